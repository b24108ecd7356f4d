"""NotShared (shared/sharing.py): which events a node's projection may pass over without its database."""
from shared.bus.envelope import Event
from shared.sharing import NotShared

ME, XFJ, RSJ, MZJ = "510104-fy", "510104-xfj", "510104-rsj", "510104-mzj"


def ev(case_id: str, audience: list[str]) -> Event:
    return Event(case_id=case_id, type="case.offered", agency=XFJ, actor="t", payload={}, audience=audience)


def test_nothing_is_skipped_before_the_database_has_spoken():
    assert not NotShared(ME).skip(ev("C1", [XFJ]))


def test_an_unshared_case_is_skipped_until_an_event_names_this_node_or_widens_the_audience():
    ns = NotShared(ME)
    ns.learn("C1", [XFJ, RSJ])
    assert ns.skip(ev("C1", [XFJ]))
    assert ns.skip(ev("C1", [XFJ, RSJ]))
    assert not ns.skip(ev("C1", [XFJ, ME]))      # this node comes to share it
    assert not ns.skip(ev("C1", [XFJ, MZJ]))     # someone new: the stored audience must grow
    assert not ns.skip(ev("C2", [XFJ]))          # another case: unknown


def test_a_shared_case_is_never_skipped_and_memory_is_bounded():
    ns = NotShared(ME, limit=2)
    ns.learn("C1", [XFJ])
    ns.learn("C1", None)                          # the database says: shared (or unknown) now
    assert not ns.skip(ev("C1", [XFJ]))
    for c in ("C2", "C3", "C4"):
        ns.learn(c, [XFJ])
    assert not ns.skip(ev("C2", [XFJ]))           # the oldest was forgotten: back to the database
    assert ns.skip(ev("C3", [XFJ])) and ns.skip(ev("C4", [XFJ]))


def test_without_a_stored_audience_only_naming_this_node_counts():
    ns = NotShared(ME, audience_matters=False)
    ns.learn("C1", [XFJ])
    assert ns.skip(ev("C1", [XFJ, MZJ]))
    assert not ns.skip(ev("C1", [XFJ, ME]))
