"""The write-behind view of a table: reads see the batch's writes, the flush writes each changed
key once on the partition of its last write, and a key born and gone within a batch never
reaches the changelog; any sequence of operations leaves the table where a dict would be."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tickwise.streams.watch.behind import Behind


class Table:
    """What ``Behind`` uses of a faust table: its store and its changelog send."""

    def __init__(self, **data: Any) -> None:
        self.data: dict[str, Any] = dict(data)
        self.changelog: list[tuple[int, str, Any]] = []

    def send_changelog(
        self, partition: int, key: str, value: Any, value_serializer: str | None = None
    ) -> None:
        assert (value is None) == (value_serializer == "raw")  # a tombstone goes out raw
        self.changelog.append((partition, key, value))


def test_a_batch_reaches_the_table_and_its_changelog_only_when_flushed() -> None:
    table = Table(old={"seq": 1}, gone={"seq": 7})
    view = Behind(table)
    view.partition = 2
    view["ES"] = {"seq": 3}
    view["ES"] = {"seq": 4}  # the same key again: one message
    view.partition = 1
    view["NQ"] = {"seq": 0}
    del view["gone"]
    view["dec-1"] = {"audited": False}
    del view["dec-1"]  # met within the batch
    assert view["ES"] == {"seq": 4} and "gone" not in view and "dec-1" not in view
    assert sorted(view) == ["ES", "NQ", "old"] and len(view) == 3
    assert table.changelog == [] and "ES" not in table.data
    assert view.flush() == 3
    assert table.data == {"old": {"seq": 1}, "ES": {"seq": 4}, "NQ": {"seq": 0}}
    assert table.changelog == [(2, "ES", {"seq": 4}), (1, "NQ", {"seq": 0}), (1, "gone", None)]
    assert view.flush() == 0  # nothing changed since


def test_deleting_what_is_not_there_is_a_key_error() -> None:
    view = Behind(Table())
    try:
        del view["missing"]
    except KeyError:
        pass
    else:
        raise AssertionError("deleting a missing key passed")
    assert view.get("missing") is None


operations = st.lists(
    st.tuples(
        st.sampled_from(["set", "del", "flush"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 3),
        st.integers(0, 2),
    ),
    max_size=40,
)


@given(operations)
def test_it_behaves_as_a_dict_and_the_changelog_replays_to_the_table(ops: list) -> None:
    table, model = Table(a=-1), {"a": -1}
    view = Behind(table)
    for op, key, value, partition in ops:
        view.partition = partition
        if op == "set":
            view[key] = model[key] = value
        elif op == "del" and key in model:
            del view[key], model[key]
        elif op == "flush":
            view.flush()
        assert dict(view.items()) == model
    view.flush()
    assert table.data == model
    replayed = {"a": -1}  # what a restart rebuilds from the changelog
    for _, key, value in table.changelog:
        if value is None:
            replayed.pop(key, None)
        else:
            replayed[key] = value
    assert replayed == model
