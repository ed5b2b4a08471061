"""Tabular data blocks (README, "Built-in blocks"): reading CSV text, sampling a dataset.

Differences from AutoGPT are listed in README, "Compatibility with AutoGPT": there is no file store, so only CSV
text is read; sampling uses its own random generator (seeded by `random_seed`), never the process-wide one.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Any

from pydantic import Field

from agentflow.blocks.sdk import (
    Block,
    BlockCategory,
    BlockContext,
    BlockError,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
)

__all__ = ["DataSamplingBlock", "ReadSpreadsheetBlock", "SamplingMethod"]


# -- ReadSpreadsheetBlock ---------------------------------------------------------------------------------


class ReadSpreadsheetBlock(Block):
    id = "acf7625e-d2cb-4941-bfeb-2819fc6fc015"
    description = (
        "Reads CSV text and outputs the data as a list of dictionaries and individual rows. "
        "Files (CSV or Excel) are not supported here: there is no file store."
    )
    categories = frozenset({BlockCategory.TEXT, BlockCategory.DATA})

    class Input(BlockSchema):
        contents: str | None = Field(default=None, description="The CSV text, e.g. 'a, b, c\\n1,2,3\\n4,5,6'.")
        file_input: str | None = Field(
            default=None, description="Not supported (no file store): giving a file fails the node."
        )
        delimiter: str = Field(default=",", description="The one character between fields.")
        quotechar: str = Field(default='"', description="The one character that quotes fields.")
        escapechar: str = Field(default="\\", description="The one character that escapes the delimiter.")
        has_header: bool = Field(default=True, description="The first row holds the column names.")
        skip_rows: int = Field(default=0, description="Rows to skip after the header (or from the start).")
        strip: bool = Field(default=True, description="Strip whitespace around names and values.")
        skip_columns: list[str] = Field(
            default_factory=list,
            description="Columns to leave out: names with a header, 0-based indices as text without one.",
        )
        sheet_name: str | int = Field(default=0, description="Excel sheet to read; ignored for CSV text.")
        produce_singular_result: bool = Field(
            default=False, description="Yield each row on 'row' instead of all of them at once on 'rows'."
        )

    class Output(BlockSchemaOutput):
        row: dict[str, str] = Field(description="One row, column name -> value (with produce_singular_result).")
        rows: list[dict[str, str]] = Field(description="Every row, column name -> value.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        if input_data.file_input:
            raise BlockError(
                "file_input is not supported: agentflow has no file store; pass the CSV text in 'contents'"
            )
        if not input_data.contents:
            raise BlockError("'contents' must be provided (file_input is not supported)")
        rows = read_csv_rows(input_data.contents, input_data)
        if input_data.produce_singular_result:
            for row in rows:
                yield "row", row
        else:
            yield "rows", rows

    test_cases = (
        BlockTestCase(
            {"contents": "a, b, c\n1,2,3\n4,5,6", "produce_singular_result": False},
            [("rows", [{"a": "1", "b": "2", "c": "3"}, {"a": "4", "b": "5", "c": "6"}])],
            "AutoGPT's case: all rows at once, header names stripped",
        ),
        BlockTestCase(
            {"contents": "a, b, c\n1,2,3\n4,5,6", "produce_singular_result": True},
            [("row", {"a": "1", "b": "2", "c": "3"}), ("row", {"a": "4", "b": "5", "c": "6"})],
            "AutoGPT's case: one row at a time",
        ),
        BlockTestCase(
            {"contents": 'x;y\n"1;2"; 3 \n', "delimiter": ";", "strip": False},
            [("rows", [{"x": "1;2", "y": " 3 "}])],
            "quoting and another delimiter; strip off",
        ),
        BlockTestCase(
            {"contents": "1,2,3\n4,5,6", "has_header": False, "skip_rows": 1, "skip_columns": ["1"]},
            [("rows", [{"0": "4", "2": "6"}])],
            "no header: keys are column indices",
        ),
        BlockTestCase({"contents": ""}, [], "empty contents", error="'contents' must be provided"),
        BlockTestCase({"file_input": "data.csv"}, [], "files are refused", error="no file store"),
        BlockTestCase({"contents": "a", "delimiter": ";;"}, [], "bad delimiter", error="invalid CSV options"),
    )


def read_csv_rows(text: str, options: ReadSpreadsheetBlock.Input) -> list[dict[str, str]]:
    """The rows of a CSV text as dicts, the way AutoGPT's ReadSpreadsheetBlock keys and filters them."""
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the first column's name
    try:
        reader = csv.reader(
            io.StringIO(text),
            delimiter=options.delimiter,
            quotechar=options.quotechar,
            escapechar=options.escapechar or None,  # "" means no escape character
        )
    except (TypeError, ValueError) as exc:
        raise BlockError(f"invalid CSV options: {exc}") from exc
    try:
        records = [record for record in reader if record]  # blank lines are not rows
    except csv.Error as exc:
        raise BlockError(f"invalid CSV at line {reader.line_num}: {exc}") from exc
    header: list[str] | None = None
    if options.has_header and records:
        header = [name.strip() if options.strip else name for name in records.pop(0)]
    skipped = set(options.skip_columns)
    rows = []
    for record in records[max(options.skip_rows, 0) :]:
        row: dict[str, str] = {}
        for index, value in enumerate(record):
            if header is not None and index >= len(header):
                continue  # a value past the last named column has no key
            key = header[index] if header is not None else str(index)
            if key not in skipped:
                row[key] = value.strip() if options.strip else value
        rows.append(row)
    return rows


# -- DataSamplingBlock ------------------------------------------------------------------------------------


class SamplingMethod(StrEnum):
    RANDOM = "random"
    SYSTEMATIC = "systematic"
    TOP = "top"
    BOTTOM = "bottom"
    STRATIFIED = "stratified"
    WEIGHTED = "weighted"
    RESERVOIR = "reservoir"
    CLUSTER = "cluster"


Item = dict[str, Any] | list[Any]


class DataSamplingBlock(Block):
    id = "4a448883-71fa-49cf-91cf-70d793bd7d87"
    description = "This block samples data from a given dataset using various sampling methods."
    categories = frozenset({BlockCategory.LOGIC})

    class Input(BlockSchema):
        data: dict[str, Any] | list[dict[str, Any] | list[Any]] = Field(
            description="The dataset: a list of dicts or of lists (a single dict is a dataset of one item)."
        )
        sample_size: int = Field(default=10, description="How many items to take.")
        sampling_method: SamplingMethod = Field(default=SamplingMethod.RANDOM, description="How to pick them.")
        accumulate: bool = Field(
            default=False,
            description="AutoGPT collects data across runs first; here each run samples only its own data.",
        )
        random_seed: int | None = Field(default=None, description="Seed, for the same sample on every run.")
        stratify_key: str | None = Field(default=None, description="Key (or list index) for stratified sampling.")
        weight_key: str | None = Field(default=None, description="Key (or list index) for weighted sampling.")
        cluster_key: str | None = Field(default=None, description="Key (or list index) for cluster sampling.")

    class Output(BlockSchemaOutput):
        sampled_data: list[dict[str, Any] | list[Any]] = Field(description="The sampled items.")
        sample_indices: list[int] = Field(description="Their indices in the dataset.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        items: list[Item] = input_data.data if isinstance(input_data.data, list) else [input_data.data]
        size = input_data.sample_size
        if size < 0:
            raise BlockError(f"sample_size must not be negative (got {size})")
        if size > len(items):
            if input_data.accumulate:  # AutoGPT would keep this data in worker memory and wait for more
                raise BlockError(
                    f"accumulate: only {len(items)} items for a sample of {size}; agentflow keeps no data "
                    "between node executions, so each run must bring the whole dataset"
                )
            raise BlockError(f"Sample size ({size}) cannot be larger than the dataset size ({len(items)}).")
        rng = random.Random(input_data.random_seed)  # None: seeded from the OS
        indices = _sample_indices(items, size, input_data, rng)
        yield "sampled_data", [items[i] for i in indices]
        yield "sample_indices", indices

    test_cases = (
        BlockTestCase(
            {
                "data": [{"id": i, "value": chr(97 + i), "group": i % 3} for i in range(10)],
                "sample_size": 3,
                "sampling_method": "stratified",
                "accumulate": False,
                "random_seed": 42,
                "stratify_key": "group",
            },
            [
                (
                    "sampled_data",
                    [
                        {"id": 0, "value": "a", "group": 0},
                        {"id": 1, "value": "b", "group": 1},
                        {"id": 8, "value": "i", "group": 2},
                    ],
                ),
                ("sample_indices", [0, 1, 8]),
            ],
            "AutoGPT's case: one item per group",
        ),
        BlockTestCase(
            {"data": [[1], [2], [3], [4]], "sample_size": 2, "sampling_method": "top"},
            [("sampled_data", [[1], [2]]), ("sample_indices", [0, 1])],
            "top",
        ),
        BlockTestCase(
            {"data": [{"n": 1}, {"n": 2}, {"n": 3}], "sample_size": 2, "sampling_method": "bottom"},
            [("sampled_data", [{"n": 2}, {"n": 3}]), ("sample_indices", [1, 2])],
            "bottom",
        ),
        BlockTestCase({"data": {"n": 1}, "sample_size": 1}, [("sampled_data", [{"n": 1}]), ("sample_indices", [0])]),
        BlockTestCase(
            {"data": [{"n": 1}], "sample_size": 2}, [], "too large", error="cannot be larger than the dataset size"
        ),
        BlockTestCase(
            {"data": [{"n": 1}], "sample_size": 1, "sampling_method": "stratified"},
            [],
            "stratified needs a key",
            error="Stratify key must be provided",
        ),
        BlockTestCase(
            {"data": [{"n": 1}], "sample_size": 1, "sampling_method": "sideways"},
            [],
            "bad method",
            error="'sampling_method'",
        ),
    )


def _sample_indices(items: list[Item], size: int, options: DataSamplingBlock.Input, rng: random.Random) -> list[int]:
    """The chosen indices, drawing from `rng` exactly as AutoGPT draws from `random` for the same seed."""
    count = len(items)
    match options.sampling_method:
        case SamplingMethod.RANDOM:
            return rng.sample(range(count), size)
        case SamplingMethod.SYSTEMATIC:
            if size == 0:
                return []
            step = count // size
            return list(range(rng.randint(0, step - 1), count, step))[:size]
        case SamplingMethod.TOP:
            return list(range(size))
        case SamplingMethod.BOTTOM:
            return list(range(count - size, count))
        case SamplingMethod.STRATIFIED:
            return _stratified(items, size, _required(options.stratify_key, "Stratify", SamplingMethod.STRATIFIED), rng)
        case SamplingMethod.WEIGHTED:
            weights = _weights(items, _required(options.weight_key, "Weight", SamplingMethod.WEIGHTED))
            return rng.choices(range(count), weights=weights, k=size)
        case SamplingMethod.RESERVOIR:
            indices = list(range(size))
            for i in range(size, count):
                j = rng.randint(0, i)
                if j < size:
                    indices[j] = i
            return indices
        case SamplingMethod.CLUSTER:
            return _cluster(items, size, _required(options.cluster_key, "Cluster", SamplingMethod.CLUSTER), rng)


def _required(key: str | None, label: str, method: SamplingMethod) -> str:
    if not key:
        raise BlockError(f"{label} key must be provided for {method.value} sampling.")
    return key


_MISSING = object()


def _lookup(item: Item, key: str) -> Any:
    """`item[key]` for a dict (None when absent); for a list, the key read as an index (_MISSING when not one)."""
    if isinstance(item, dict):
        return item.get(key)
    try:
        return item[int(key)]
    except (ValueError, IndexError):
        return _MISSING


def _stratified(items: list[Item], size: int, key: str, rng: random.Random) -> list[int]:
    strata: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        value = _lookup(item, key)
        if value is _MISSING:
            raise BlockError(f"Stratify key '{key}' not found in item {item}")
        if value is None:
            raise BlockError(f"Stratify value for key '{key}' is None")
        strata[str(value)].append(index)
    # Each stratum's share of the sample, at least 1, then evened out to exactly `size`, one at a time, by the
    # largest stratum (AutoGPT's rule); unlike AutoGPT, a stratum that is already taken whole gets no more.
    sizes = {name: max(1, int(len(members) / len(items) * size)) for name, members in strata.items()}
    while (total := sum(sizes.values())) != size:
        if total < size:
            open_strata = [name for name in sizes if sizes[name] < len(strata[name])]
            sizes[max(open_strata, key=lambda name: sizes[name])] += 1
        else:
            sizes[max(sizes, key=lambda name: sizes[name])] -= 1
    indices: list[int] = []
    for name, taken in sizes.items():
        indices.extend(rng.sample(strata[name], taken))
    return indices


def _weights(items: Sequence[Item], key: str) -> list[float]:
    weights = []
    for item in items:
        value = _lookup(item, key)
        if value is _MISSING:
            raise BlockError(f"Weight key '{key}' not found in item {item}")
        if value is None:
            raise BlockError(f"Weight value for key '{key}' is None")
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise BlockError(f"Weight value '{value}' cannot be converted to a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise BlockError(f"Weight value '{value}' must be a finite number, 0 or more")
        weights.append(weight)
    if weights and not any(weights):
        raise BlockError(f"every weight under key '{key}' is 0: nothing can be drawn")
    return weights


def _cluster(items: list[Item], size: int, key: str, rng: random.Random) -> list[int]:
    clusters: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        value = _lookup(item, key)
        if value is _MISSING:
            raise BlockError(f"Item {item} does not have the cluster key '{key}'")
        clusters[str(value)].append(index)  # a dict without the key joins the cluster "None", as in AutoGPT
    chosen: list[str] = []
    while sum(len(clusters[name]) for name in chosen) < size:
        available = [name for name in clusters if name not in chosen]
        if not available:
            break
        chosen.append(rng.choice(available))
    indices = [index for name in chosen for index in clusters[name]]
    return rng.sample(indices, size) if len(indices) > size else indices
