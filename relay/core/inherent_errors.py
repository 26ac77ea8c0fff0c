"""Every error a relay block can fail import with, for callers that treat them alike."""

from __future__ import annotations

from relay.core.inclusion import InclusionError
from relay.core.paras_inherent import InherentError
from relay.core.runtime import BlockImportError

ANY_IMPORT_ERROR = (BlockImportError, InherentError, InclusionError)
