"""Cloud Functions (gen2, CloudEvent): storage finalize events on the landing bucket launch pipelines.

Each function deploys from its own folder (``on_input_file/``, ``on_weekly_file/``,
``on_outcomes_file/``): a ``main.py`` of a
few lines and a ``requirements.txt`` that installs this project's wheel, which carries the shared code
(this package and ``remarketing.launch``). The staging script (terraform/scripts/stage-functions.sh) puts
the wheel and constraints.txt beside each folder's requirements.
"""
