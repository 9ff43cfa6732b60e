"""Dataset specs: what a campaign file must look like and how to learn from it (one YAML per use case)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from remarketing.errors import SpecError

FeatureType = Literal["integer", "number", "category"]


class Band(BaseModel):
    """Values up to ``upto`` (inclusive) read as ``text`` (``{value}`` is the value)."""

    upto: float
    text: str


class Feature(BaseModel):
    type: FeatureType
    categories: list[str] | None = None
    min: float | None = None
    max: float | None = None
    sentinel: float | None = Field(default=None, description="a value meaning 'not applicable' (pdays=-1)")
    transform: Literal["none", "log", "signed_log"] = Field(
        default="none",
        description="for linear and neural models: log1p for counts, signed log1p for heavy tails",
    )

    # How a reason code reads to an analyst ("no contact channel on file"): a category's own text, the
    # sentinel's, the first band the value falls in, else ``text`` (``{value}`` and ``{label}`` filled in).
    label: str | None = Field(default=None, description="the field in plain words (default: its name)")
    text: str | None = Field(default=None, description="a value in words, e.g. 'aged {value:.0f}'")
    texts: dict[str, str] = Field(default_factory=dict, description="category -> words")
    sentinel_text: str | None = None
    bands: list[Band] = Field(default_factory=list)

    @model_validator(mode="after")
    def _categories_for_categories(self) -> Feature:
        if self.type == "category" and not self.categories:
            raise ValueError("a category feature lists its allowed categories")
        unknown = set(self.texts) - set(self.categories or [])
        if unknown:
            raise ValueError(f"texts for categories that are not allowed: {sorted(unknown)}")
        return self

    def describe(self, name: str, value: Any) -> str:
        """The value of this field in the words of the spec."""
        label = self.label or name
        if self.type == "category":
            return self.texts.get(str(value)) or (self.text or "{label}: {value}").format(
                label=label, value=value
            )
        number = float(value)
        if self.sentinel is not None and number == self.sentinel and self.sentinel_text:
            return self.sentinel_text
        template = next((b.text for b in self.bands if number <= b.upto), self.text or "{label} {value:g}")
        return template.format(label=label, value=number)


class Target(BaseModel):
    column: str
    positive: str
    negative: str
    meaning: str = Field(default="converting", description="what the positive outcome is, in words")


PersonalDataKind = Literal["direct identifier", "quasi-identifier", "neither"]


class ColumnClass(BaseModel):
    """A column's place in the data contract: how it identifies a person, and why the system keeps it."""

    kind: PersonalDataKind = Field(
        description="direct identifier (names one person), quasi-identifier (names one in combination), "
        "or neither"
    )
    purpose: str = Field(min_length=3, description="why the column is read at all")


class DatasetSpec(BaseModel):
    name: str
    description: str = ""
    separator: str = ","
    encoding: str = "utf-8"
    target: Target
    id_column: str
    order_column: str | None = None
    never_use: dict[str, str] = Field(default_factory=dict, description="column -> why it is never used")
    features: dict[str, Feature]
    # The data contract: every column the file may carry, classed (outside the scored file and the lookup
    # table, a direct identifier appears only as a pseudonym: remarketing.personal_data).
    personal_data: dict[str, ColumnClass]

    @model_validator(mode="after")
    def _every_column_classed(self) -> DatasetSpec:
        columns = {self.id_column, self.target.column, *self.never_use, *self.features}
        if self.order_column:
            columns.add(self.order_column)
        unclassed = [
            c for c in [self.id_column, *self.features, *self.never_use] if c not in self.personal_data
        ]
        unclassed += sorted(columns - set(self.personal_data) - set(unclassed))
        if unclassed:
            raise ValueError(
                f"personal_data does not class {unclassed}: every column is a direct identifier, a "
                "quasi-identifier or neither, with its purpose"
            )
        unknown = sorted(set(self.personal_data) - columns)
        if unknown:
            raise ValueError(f"personal_data classes columns the spec does not name: {unknown}")
        return self

    @property
    def direct_identifiers(self) -> list[str]:
        return [c for c, k in self.personal_data.items() if k.kind == "direct identifier"]

    @model_validator(mode="after")
    def _roles_do_not_overlap(self) -> DatasetSpec:
        roles = {self.target.column, self.id_column, *([self.order_column] if self.order_column else [])}
        clash = roles & set(self.features)
        if clash:
            raise ValueError(f"id, order and target columns are never features: {sorted(clash)}")
        if set(self.never_use) & set(self.features):
            raise ValueError(
                f"columns both used and never used: {sorted(set(self.never_use) & set(self.features))}"
            )
        return self

    @property
    def feature_names(self) -> list[str]:
        return list(self.features)

    @property
    def categorical(self) -> list[str]:
        return [n for n, f in self.features.items() if f.type == "category"]

    @property
    def numeric(self) -> list[str]:
        return [n for n, f in self.features.items() if f.type != "category"]

    def input_columns(self, *, with_target: bool) -> list[str]:
        """The columns a file must carry (the id is generated when absent, so it is not required)."""
        cols = list(self.features)
        if self.order_column:
            cols.append(self.order_column)
        if with_target:
            cols.append(self.target.column)
        return cols


SPEC_DIR = resources.files("remarketing") / "specs"


def available() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in SPEC_DIR.iterdir() if p.name.endswith(".yaml"))


@cache
def load_spec(name_or_path: str) -> DatasetSpec:
    """A packaged spec by name (``bank-marketing``) or a YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} and path.is_file():
        text = path.read_text()
    else:
        entry = SPEC_DIR / f"{name_or_path}.yaml"
        if not entry.is_file():
            raise SpecError(f"unknown dataset {name_or_path!r}; known: {', '.join(available())}")
        text = entry.read_text()
    try:
        return DatasetSpec.model_validate(yaml.safe_load(text))
    except Exception as exc:  # pydantic's message names the field
        raise SpecError(f"dataset spec {name_or_path!r} is invalid: {exc}") from exc
