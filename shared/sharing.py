"""Which ledger events a node can pass over without its database.

Every node's projections see every event on the ledger, yet most cases are not shared with most nodes
(DESIGN §2: only the bodies named in a case's audience get it). Folding such an event is a database
round trip that finds nothing to do. A case becomes shared with a node only through an event that
names the node in its audience, so once the database has said "not shared", later events of that
case whose audience neither names this node nor adds anyone can be skipped until one does."""
from __future__ import annotations

from collections import OrderedDict

from shared.bus.envelope import Event


class NotShared:
    """Bounded memory of cases this node does not share, with the audience it last stored for them."""

    def __init__(self, agency: str, limit: int = 50_000, audience_matters: bool = True):
        """audience_matters: the node stores the audience of unshared cases (intake's registrations), so
        an event that widens it is not skipped; without, only "does it name this node" counts."""
        self.agency, self.limit, self.audience_matters = agency, limit, audience_matters
        self._cases: OrderedDict[str, frozenset[str]] = OrderedDict()

    def skip(self, ev: Event) -> bool:
        audience = self._cases.get(ev.case_id)
        return audience is not None and self.agency not in ev.audience and \
            (not self.audience_matters or audience.issuperset(ev.audience))

    def learn(self, case_id: str, audience: list[str] | None) -> None:
        """What the database said after folding an event: the stored audience of an unshared case, or
        None when the case is shared with this node (or unknown): then nothing is skipped for it."""
        if audience is None:
            self._cases.pop(case_id, None)
            return
        self._cases[case_id] = frozenset(audience)
        self._cases.move_to_end(case_id)
        if len(self._cases) > self.limit:
            self._cases.popitem(last=False)
