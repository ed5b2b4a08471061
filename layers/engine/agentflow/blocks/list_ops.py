"""List blocks that search, change, combine and compare lists (README, "Built-in blocks").

Items are compared as JSON values (`agentflow.blocks.dict_ops.json_key`): `true` is not `1` and `{}` is not `[]`,
though `1` and `1.0` are the same number, and unhashable items (lists, objects) compare by content. Pins named
`list` are annotated with the module-level alias `AnyList`: inside a class body the name `list` would be the field.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterator
from itertools import zip_longest
from typing import Any

from pydantic import Field

from agentflow.blocks.dict_ops import json_key
from agentflow.blocks.execution import encode_output
from agentflow.blocks.sdk import (
    BlockCategory,
    BlockContext,
    BlockSchema,
    BlockSchemaOutput,
    BlockTestCase,
    PureBlock,
)

AnyList = list[Any]
# A list of lists; a null entry (e.g. a gap between `lists_$_<i>` pins) is skipped instead of becoming [null].
ListOfLists = list[AnyList | None]
_BASIC = frozenset({BlockCategory.BASIC})


def _index_of(items: AnyList, value: Any) -> int | None:
    wanted = json_key(value)
    return next((i for i, item in enumerate(items) if json_key(item) == wanted), None)


def _out_of_range(index: int, items: AnyList) -> str:
    return f"Index out of range: {index} (the list has {len(items)} items)"


def _shown(value: Any) -> str:
    text = json.dumps(encode_output(value), ensure_ascii=False)
    return text if len(text) <= 100 else f"{text[:97]}..."


def _present(lists: ListOfLists) -> list[AnyList]:
    return [items for items in lists if items is not None]


def _yields(**pins: Any) -> list[tuple[str, Any]]:
    """Test-case outputs: the pins in the order given."""
    return list(pins.items())


def _sized(pin: str, items: AnyList) -> list[tuple[str, Any]]:
    """Test-case outputs of a block that yields a list and then its `length`."""
    return [(pin, items), ("length", len(items))]


def _flat(items: AnyList, original_depth: int) -> list[tuple[str, Any]]:
    """Test-case outputs of FlattenListBlock."""
    return [("flattened_list", items), ("length", len(items)), ("original_depth", original_depth)]


def _unique(items: AnyList) -> AnyList:
    """The first occurrence of each item, in order."""
    firsts: dict[Hashable, Any] = {}
    for item in items:
        firsts.setdefault(json_key(item), item)
    return list(firsts.values())


class FindInListBlock(PureBlock):
    id = "5e2c6d0a-1e37-489f-b1d0-8e1812b23333"
    description = "Finds the index of the value in the list."
    categories = _BASIC

    class Input(BlockSchema):
        list: AnyList = Field(description="The list to search.")
        value: Any = Field(description="The value to find (compared as JSON: true is not 1).")

    class Output(BlockSchemaOutput):
        index: int = Field(description="The index of the value's first occurrence.")
        found: bool = Field(description="Whether the value is in the list.")
        not_found_value: Any = Field(description="The value, when it is not in the list.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        index = _index_of(input_data.list, input_data.value)
        if index is None:
            yield "found", False
            yield "not_found_value", input_data.value
        else:
            yield "index", index
            yield "found", True

    test_cases = (
        BlockTestCase({"list": [1, 2, 3, 4, 5], "value": 3}, _yields(index=2, found=True), "AutoGPT: found"),
        BlockTestCase({"list": [1, 2, 3, 4, 5], "value": 6}, _yields(found=False, not_found_value=6), "AutoGPT"),
        BlockTestCase({"list": ["a", "b", "a"], "value": "a"}, _yields(index=0, found=True), "first occurrence"),
        BlockTestCase({"list": [[1], {"k": [2]}], "value": {"k": [2]}}, _yields(index=1, found=True), "by content"),
        BlockTestCase({"list": [1, True], "value": True}, _yields(index=1, found=True), "deviation: true is not 1"),
        BlockTestCase({"list": [1]}, [], "value is required", error="missing required input 'value'"),
    )


class RemoveFromListBlock(PureBlock):
    id = "d93c5a93-ac7e-41c1-ae5c-ef67e6e9b826"
    description = "Removes an item from a list by value or index."
    categories = _BASIC

    class Input(BlockSchema):
        list: AnyList = Field(description="The list to remove the item from.")
        value: Any = Field(default=None, description="The value whose first occurrence to remove.")
        index: int | None = Field(default=None, description="The index to remove (negative counts from the end).")
        return_item: bool = Field(default=False, description="Also yield the removed item on `removed_item`.")

    class Output(BlockSchemaOutput):
        updated_list: AnyList = Field(description="A copy of the list without the item.")
        removed_item: Any = Field(description="The removed item, when `return_item` is set.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        items, index = list(input_data.list), input_data.index  # a copy: the stored input_default must not change
        if index is None and input_data.value is not None:  # the index wins when both are given, as in AutoGPT
            index = _index_of(items, input_data.value)
            if index is None:
                yield "error", f"Value not found in list: {_shown(input_data.value)}"
                return
        if index is None:
            yield "error", "No index or value provided for removal"
        elif not -len(items) <= index < len(items):
            yield "error", _out_of_range(index, items)
        else:
            removed = items.pop(index)
            yield "updated_list", items
            if input_data.return_item:
                yield "removed_item", removed

    test_cases = (
        BlockTestCase(
            {"list": [1, 2, 3], "index": 1, "return_item": True},
            _yields(updated_list=[1, 3], removed_item=2),
            "AutoGPT",
        ),
        BlockTestCase({"list": ["a", "b", "c"], "value": "b"}, _yields(updated_list=["a", "c"]), "AutoGPT: by value"),
        BlockTestCase({"list": [1, 2], "index": 0, "value": 2}, _yields(updated_list=[2]), "index wins over value"),
        BlockTestCase({"list": [1, True], "value": True}, _yields(updated_list=[1]), "deviation: true is not 1"),
        BlockTestCase({"list": [1, 2], "index": 2}, [], "past the end fails", error="Index out of range: 2"),
        BlockTestCase({"list": [1], "value": "x"}, [], "a missing value fails", error='Value not found in list: "x"'),
        BlockTestCase({"list": [1]}, [], "nothing to remove fails", error="No index or value provided for removal"),
    )


class ReplaceListItemBlock(PureBlock):
    id = "fbf62922-bea1-4a3d-8bac-23587f810b38"
    description = "Replaces an item at the specified index."
    categories = _BASIC

    class Input(BlockSchema):
        list: AnyList = Field(description="The list to change.")
        index: int = Field(description="The index of the item to replace (negative counts from the end).")
        value: Any = Field(description="The new item.")

    class Output(BlockSchemaOutput):
        updated_list: AnyList = Field(description="A copy of the list with the new item.")
        old_item: Any = Field(description="The item that was replaced.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        items, index = list(input_data.list), input_data.index
        if not -len(items) <= index < len(items):
            yield "error", _out_of_range(index, items)
            return
        old_item, items[index] = items[index], input_data.value
        yield "updated_list", items
        yield "old_item", old_item

    test_cases = (
        BlockTestCase(
            {"list": [1, 2, 3], "index": 1, "value": 99}, _yields(updated_list=[1, 99, 3], old_item=2), "AutoGPT"
        ),
        BlockTestCase(
            {"list": ["a", "b"], "index": -1, "value": "c"}, _yields(updated_list=["a", "c"], old_item="b"), "AutoGPT"
        ),
        BlockTestCase({"list": [None], "index": 0, "value": 0}, _yields(updated_list=[0], old_item=None), "null item"),
        BlockTestCase({"list": [1], "index": 1, "value": 2}, [], "past the end fails", error="Index out of range: 1"),
        BlockTestCase({"list": [1], "value": 2}, [], "index is required", error="missing required input 'index'"),
    )


class ListIsEmptyBlock(PureBlock):
    id = "896ed73b-27d0-41be-813c-c1c1dc856c03"
    description = "Checks if a list is empty."
    categories = _BASIC

    class Input(BlockSchema):
        list: AnyList = Field(description="The list to check.")

    class Output(BlockSchemaOutput):
        is_empty: bool = Field(description="True when the list has no items.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "is_empty", not input_data.list

    test_cases = (
        BlockTestCase({"list": []}, [("is_empty", True)], "AutoGPT: empty"),
        BlockTestCase({"list": [1]}, [("is_empty", False)], "AutoGPT: not empty"),
        BlockTestCase({"list": [None]}, [("is_empty", False)], "a null item is an item"),
        BlockTestCase({}, [], "list is required", error="missing required input 'list'"),
    )


class ConcatenateListsBlock(PureBlock):
    id = "3cf9298b-5817-4141-9d80-7c2cc5199c8e"
    description = (
        "Concatenates multiple lists into a single list. All elements from all input lists are combined in order. "
        "Supports optional deduplication and None removal."
    )
    categories = _BASIC

    class Input(BlockSchema):
        lists: ListOfLists = Field(description="The lists to concatenate, in order (null entries are skipped).")
        deduplicate: bool = Field(default=False, description="Keep only the first occurrence of each item.")
        remove_none: bool = Field(default=False, description="Drop null items.")

    class Output(BlockSchemaOutput):
        concatenated_list: AnyList = Field(description="Every item of every list, in order.")
        length: int = Field(description="The number of items in concatenated_list.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        result = [item for items in _present(input_data.lists) for item in items]
        if input_data.remove_none:
            result = [item for item in result if item is not None]
        if input_data.deduplicate:
            result = _unique(result)
        yield "concatenated_list", result
        yield "length", len(result)

    test_cases = (
        BlockTestCase({"lists": [[1, 2, 3], [4, 5, 6]]}, _sized("concatenated_list", [1, 2, 3, 4, 5, 6]), "AutoGPT"),
        BlockTestCase(
            {"lists": [["a", "b"], ["c"], ["d", "e", "f"]]}, _sized("concatenated_list", list("abcdef")), "AutoGPT"
        ),
        BlockTestCase({"lists": [[1, 2], []]}, _sized("concatenated_list", [1, 2]), "AutoGPT: an empty list"),
        BlockTestCase({"lists": []}, _sized("concatenated_list", []), "AutoGPT: no lists"),
        BlockTestCase(
            {"lists": [[1, 2, 2, 3], [3, 4]], "deduplicate": True}, _sized("concatenated_list", [1, 2, 3, 4]), "AutoGPT"
        ),
        BlockTestCase(
            {"lists": [[1, None, 2], [None, 3]], "remove_none": True}, _sized("concatenated_list", [1, 2, 3]), "AutoGPT"
        ),
        BlockTestCase({"lists_$_1": [3]}, _sized("concatenated_list", [3]), "deviation: a null list is skipped"),
        BlockTestCase({}, [], "lists is required", error="missing required input 'lists'"),
    )


def _flatten(items: AnyList, max_depth: int) -> AnyList:
    """Items of nested lists, in order, opening lists up to `max_depth` levels deep (-1: all). No recursion."""
    flat: AnyList = []
    open_lists = [iter(items)]
    while open_lists:
        for item in open_lists[-1]:
            if isinstance(item, list) and (max_depth == -1 or len(open_lists) <= max_depth):
                open_lists.append(iter(item))
                break
            flat.append(item)
        else:
            open_lists.pop()
    return flat


def _depth(items: AnyList) -> int:
    """How deeply lists nest: 1 for a flat list, empty or not; 2 when it holds a list; and so on."""
    deepest, pending = 1, [(items, 1)]
    while pending:
        current, depth = pending.pop()
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in current if isinstance(child, list))
    return deepest


class FlattenListBlock(PureBlock):
    id = "cc45bb0f-d035-4756-96a7-fe3e36254b4d"
    description = (
        "Flattens a nested list structure into a single flat list. Supports configurable maximum flattening depth."
    )
    categories = _BASIC

    class Input(BlockSchema):
        nested_list: AnyList = Field(description="A list that may hold lists, at any depth.")
        max_depth: int = Field(default=-1, description="How many levels to flatten: -1 all, 0 none, 1 one level.")

    class Output(BlockSchemaOutput):
        flattened_list: AnyList = Field(description="The items, with nested lists opened up to max_depth.")
        length: int = Field(description="The number of items in flattened_list.")
        original_depth: int = Field(description="How deeply the input nests (1 for a flat list).")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        if input_data.max_depth < -1:
            yield "error", f"max_depth must be -1 (unlimited) or a non-negative integer, got {input_data.max_depth}"
            return
        flat = _flatten(input_data.nested_list, input_data.max_depth)
        yield "flattened_list", flat
        yield "length", len(flat)
        yield "original_depth", _depth(input_data.nested_list)

    test_cases = (
        BlockTestCase({"nested_list": [[1, 2], [3, [4, 5]]]}, _flat([1, 2, 3, 4, 5], 3), "AutoGPT: mixed depths"),
        BlockTestCase({"nested_list": [1, [2, [3, [4]]]]}, _flat([1, 2, 3, 4], 4), "AutoGPT: deep"),
        BlockTestCase({"nested_list": [1, [2, [3, [4]]], 5], "max_depth": 1}, _flat([1, 2, [3, [4]], 5], 4), "AutoGPT"),
        BlockTestCase({"nested_list": []}, _flat([], 1), "AutoGPT: empty"),
        BlockTestCase({"nested_list": [1, 2, 3]}, _flat([1, 2, 3], 1), "AutoGPT: already flat"),
        BlockTestCase(
            {"nested_list": [[1, [2]]], "max_depth": 0}, _flat([[1, [2]]], 3), "max_depth 0 flattens nothing"
        ),
        BlockTestCase({"nested_list": [1], "max_depth": -2}, [], "max_depth below -1 fails", error="got -2"),
    )


class InterleaveListsBlock(PureBlock):
    id = "9f616084-1d9f-4f8e-bc00-5b9d2a75cd75"
    description = "Interleaves elements from multiple lists in round-robin fashion, alternating between sources."
    categories = _BASIC

    class Input(BlockSchema):
        lists: ListOfLists = Field(description="The lists to take items from in turn (null entries are skipped).")

    class Output(BlockSchemaOutput):
        interleaved_list: AnyList = Field(description="The first item of each list, then the second, and so on.")
        length: int = Field(description="The number of items in interleaved_list.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        gap = object()  # pads the shorter lists, then is dropped: a null item of a list is kept
        rounds = zip_longest(*_present(input_data.lists), fillvalue=gap)
        result = [item for group in rounds for item in group if item is not gap]
        yield "interleaved_list", result
        yield "length", len(result)

    test_cases = (
        BlockTestCase(
            {"lists": [[1, 2, 3], ["a", "b", "c"]]}, _sized("interleaved_list", [1, "a", 2, "b", 3, "c"]), "AutoGPT"
        ),
        BlockTestCase(
            {"lists": [[1, 2, 3], ["a", "b"], ["x", "y", "z"]]},
            _sized("interleaved_list", [1, "a", "x", 2, "b", "y", 3, "z"]),
            "AutoGPT: a shorter list stops contributing",
        ),
        BlockTestCase({"lists": [[1], [2], [3]]}, _sized("interleaved_list", [1, 2, 3]), "AutoGPT"),
        BlockTestCase({"lists": []}, _sized("interleaved_list", []), "AutoGPT: no lists"),
        BlockTestCase({"lists": [[None, None], [1]]}, _sized("interleaved_list", [None, 1, None]), "null items stay"),
        BlockTestCase({"lists_$_0": [1], "lists_$_2": ["a"]}, _sized("interleaved_list", [1, "a"]), "deviation: null"),
    )


class ZipListsBlock(PureBlock):
    id = "0d0e684f-5cb9-4c4b-b8d1-47a0860e0c07"
    description = (
        "Zips multiple lists together into a list of grouped elements. "
        "Supports padding to longest or truncating to shortest."
    )
    categories = _BASIC

    class Input(BlockSchema):
        lists: ListOfLists = Field(description="The lists whose items to group by index (null entries are skipped).")
        pad_to_longest: bool = Field(default=False, description="Pad to the longest list, else stop at the shortest.")
        fill_value: Any = Field(default=None, description="What pads the shorter lists when pad_to_longest is set.")

    class Output(BlockSchemaOutput):
        zipped_list: list[AnyList] = Field(description="One group per index: the item of each list at that index.")
        length: int = Field(description="The number of groups.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        lists = _present(input_data.lists)
        if input_data.pad_to_longest:
            result = [list(group) for group in zip_longest(*lists, fillvalue=input_data.fill_value)]
        else:
            result = [list(group) for group in zip(*lists, strict=False)]  # stops at the shortest list
        yield "zipped_list", result
        yield "length", len(result)

    test_cases = (
        BlockTestCase(
            {"lists": [[1, 2, 3], ["a", "b", "c"]]}, _sized("zipped_list", [[1, "a"], [2, "b"], [3, "c"]]), "AutoGPT"
        ),
        BlockTestCase({"lists": [[1, 2, 3], ["a", "b"]]}, _sized("zipped_list", [[1, "a"], [2, "b"]]), "AutoGPT"),
        BlockTestCase(
            {"lists": [[1, 2], ["a", "b", "c"]], "pad_to_longest": True, "fill_value": 0},
            _sized("zipped_list", [[1, "a"], [2, "b"], [0, "c"]]),
            "AutoGPT: pads to the longest",
        ),
        BlockTestCase({"lists": []}, _sized("zipped_list", []), "AutoGPT: no lists"),
        BlockTestCase({"lists": [[1], ["a"]], "pad_to_longest": True}, _sized("zipped_list", [[1, "a"]]), "no padding"),
        BlockTestCase({"lists_$_0": [1], "lists_$_2": ["a"]}, _sized("zipped_list", [[1, "a"]]), "deviation: null"),
    )


def _without(items: AnyList, others: AnyList) -> AnyList:
    excluded = {json_key(item) for item in others}
    return [item for item in items if json_key(item) not in excluded]


class ListDifferenceBlock(PureBlock):
    id = "05309873-9d61-447e-96b5-b804e2511829"
    description = (
        "Computes the difference between two lists. "
        "Returns elements in the first list not found in the second, or symmetric difference."
    )
    categories = _BASIC

    class Input(BlockSchema):
        list_a: AnyList = Field(description="The list whose items to keep.")
        list_b: AnyList = Field(description="The items to remove from list_a.")
        symmetric: bool = Field(default=False, description="Also add list_b's items that are not in list_a.")

    class Output(BlockSchemaOutput):
        difference: AnyList = Field(description="list_a's items not in list_b (then list_b's not in list_a).")
        length: int = Field(description="The number of items in difference.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        list_a, list_b = input_data.list_a, input_data.list_b
        result = _without(list_a, list_b) + (_without(list_b, list_a) if input_data.symmetric else [])
        yield "difference", result
        yield "length", len(result)

    test_cases = (
        BlockTestCase({"list_a": [1, 2, 3, 4, 5], "list_b": [3, 4, 5, 6, 7]}, _sized("difference", [1, 2]), "AutoGPT"),
        BlockTestCase(
            {"list_a": [1, 2, 3, 4, 5], "list_b": [3, 4, 5, 6, 7], "symmetric": True},
            _sized("difference", [1, 2, 6, 7]),
            "AutoGPT: symmetric",
        ),
        BlockTestCase({"list_a": ["a", "b", "c"], "list_b": ["b"]}, _sized("difference", ["a", "c"]), "AutoGPT"),
        BlockTestCase({"list_a": [], "list_b": [1, 2, 3]}, _sized("difference", []), "AutoGPT: empty list_a"),
        BlockTestCase(
            {"list_a": [[1], {}, True], "list_b": [[1], [], 1]}, _sized("difference", [{}, True]), "by content"
        ),
    )


class ListIntersectionBlock(PureBlock):
    id = "b6eb08b6-dbe3-411b-b9b4-2508cb311a1f"
    description = "Computes the intersection of two lists, returning only elements present in both."
    categories = _BASIC

    class Input(BlockSchema):
        list_a: AnyList = Field(description="The first list; the result keeps its order.")
        list_b: AnyList = Field(description="The second list.")

    class Output(BlockSchemaOutput):
        intersection: AnyList = Field(description="list_a's items that are also in list_b, each once.")
        length: int = Field(description="The number of items in intersection.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        wanted = {json_key(item) for item in input_data.list_b}
        result = _unique([item for item in input_data.list_a if json_key(item) in wanted])  # each common item once
        yield "intersection", result
        yield "length", len(result)

    test_cases = (
        BlockTestCase(
            {"list_a": [1, 2, 3, 4, 5], "list_b": [3, 4, 5, 6, 7]}, _sized("intersection", [3, 4, 5]), "AutoGPT"
        ),
        BlockTestCase({"list_a": ["a", "b", "c"], "list_b": ["c", "d", "e"]}, _sized("intersection", ["c"]), "AutoGPT"),
        BlockTestCase({"list_a": [1, 2], "list_b": [3, 4]}, _sized("intersection", []), "AutoGPT: nothing in common"),
        BlockTestCase({"list_a": [], "list_b": [1, 2, 3]}, _sized("intersection", []), "AutoGPT: empty list_a"),
        BlockTestCase({"list_a": [2, 1, 2], "list_b": [1, 2]}, _sized("intersection", [2, 1]), "each once, a's order"),
        BlockTestCase({"list_a": [[1], True, {}], "list_b": [[1], 1, []]}, _sized("intersection", [[1]]), "by content"),
    )


class ReverseListOrderBlock(PureBlock):
    id = "422cb708-3109-4277-bfe3-bc2ae5812777"
    description = "Reverses the order of elements in a list"
    categories = _BASIC

    class Input(BlockSchema):
        input_list: AnyList = Field(description="The list to reverse.")

    class Output(BlockSchemaOutput):
        reversed_list: AnyList = Field(description="The list in reversed order.")

    def run(self, input_data: Input, context: BlockContext) -> Iterator[tuple[str, Any]]:
        yield "reversed_list", input_data.input_list[::-1]

    test_cases = (
        BlockTestCase({"input_list": [1, 2, 3, 4, 5]}, [("reversed_list", [5, 4, 3, 2, 1])], "AutoGPT"),
        BlockTestCase({"input_list": []}, [("reversed_list", [])], "an empty list"),
        BlockTestCase({"input_list": [[1, 2], None]}, [("reversed_list", [None, [1, 2]])], "items are not reversed"),
        BlockTestCase({}, [], "input_list is required", error="missing required input 'input_list'"),
    )
