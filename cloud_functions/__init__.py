"""Cloud Functions (gen2, CloudEvent): storage finalize events on the landing bucket launch pipelines.

Each function deploys from its own folder (``on_input_file/``, ``on_weekly_file/``,
``on_outcomes_file/``): a ``main.py`` of a
few lines and a ``requirements.txt`` that installs this project's wheel, which carries the shared code
(this package and ``remarketing.launch``). The staging script (terraform/scripts/stage-functions.sh) puts
the wheel and constraints.txt beside each folder's requirements.
"""

from typing import NamedTuple


class Function(NamedTuple):
    port_setting: str  # its local port (the local stack, the bridge, Prometheus)
    kind: str  # the runs it launches


# The one list of the functions, by target name (= folder).
FUNCTIONS = {
    "on_input_file": Function("input_function_port", "training"),
    "on_weekly_file": Function("weekly_function_port", "scoring"),
    "on_outcomes_file": Function("outcomes_function_port", "monitoring"),
}
