"""lastresort: the Dutch "mayor as last resort" arrangement for abused children,
as an executable, checkable and embeddable protocol.

Everything a user needs is importable from here::

    import lastresort as lr
    engine = lr.Engine(store=lr.MemoryStore(), clock=lr.VirtualClock(start))
"""

from .clock import Clock, SystemClock, VirtualClock
from .diagram import to_dot, to_mermaid
from .engine import Engine
from .errors import (
    ActorRefused,
    ChannelRefused,
    ConcurrentUpdate,
    DeadlineGone,
    FactsRefused,
    GuardRefused,
    InvalidArgument,
    LastResortError,
    NotPermitted,
    ProtocolError,
    ScenarioError,
    StoreError,
    TransitionNotAllowed,
    UnknownEncounter,
    UnknownProtocol,
)
from .events import (
    DeadlineCleared,
    DeadlineDeferred,
    DeadlineMissed,
    DeadlineScheduled,
    EncounterClosed,
    EncounterOpened,
    Event,
    NotificationDeadLettered,
    NotificationDelivered,
    NotificationQueued,
    ObserverFailed,
    ResponsibilityTransferred,
    StepEntered,
)
from .hookspecs import hookimpl
from .model import (
    Actor,
    Deadline,
    Encounter,
    Fact,
    FactKind,
    Party,
    PartyKind,
    Protocol,
    ProtocolKind,
    Requirements,
    Step,
    StepKind,
    Text,
    Transition,
)
from .outbox import Backoff, DeliveryDeferred, DeliveryRefused, Notification
from .plugins import PluginLoadError
from .protocol_file import dump_protocol, load_packaged_protocol, load_protocol
from .store import MemoryStore, PendingDeadline, SQLiteStore, Store
from .validate import validate
from .verify import Bound, PathStep, Property, PropertyResult, Report, Violation, verify

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorRefused",
    "Backoff",
    "Bound",
    "ChannelRefused",
    "Clock",
    "ConcurrentUpdate",
    "Deadline",
    "DeadlineCleared",
    "DeadlineDeferred",
    "DeadlineGone",
    "DeadlineMissed",
    "DeadlineScheduled",
    "DeliveryDeferred",
    "DeliveryRefused",
    "Encounter",
    "EncounterClosed",
    "EncounterOpened",
    "Engine",
    "Event",
    "Fact",
    "FactKind",
    "FactsRefused",
    "GuardRefused",
    "InvalidArgument",
    "LastResortError",
    "MemoryStore",
    "NotPermitted",
    "Notification",
    "NotificationDeadLettered",
    "NotificationDelivered",
    "NotificationQueued",
    "ObserverFailed",
    "Party",
    "PartyKind",
    "PathStep",
    "PendingDeadline",
    "PluginLoadError",
    "Property",
    "PropertyResult",
    "Protocol",
    "ProtocolError",
    "ProtocolKind",
    "Report",
    "Requirements",
    "ResponsibilityTransferred",
    "SQLiteStore",
    "ScenarioError",
    "Step",
    "StepEntered",
    "StepKind",
    "Store",
    "StoreError",
    "SystemClock",
    "Text",
    "Transition",
    "TransitionNotAllowed",
    "UnknownEncounter",
    "UnknownProtocol",
    "Violation",
    "VirtualClock",
    "__version__",
    "dump_protocol",
    "hookimpl",
    "load_packaged_protocol",
    "load_protocol",
    "to_dot",
    "to_mermaid",
    "validate",
    "verify",
]
