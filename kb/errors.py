"""The knowledge base's exceptions; shown to users as one line at the edges (CLI, UI)."""


class KBError(Exception):
    """A problem the user can act on; the message says what happened and what to do."""


class ImageError(KBError):
    """An image file that cannot be used: corrupt, unsupported, too large."""


class ModelUnavailableError(KBError):
    """A model that cannot be loaded (not cached and no network, or not installed)."""


class EmbedderMismatchError(KBError):
    """The KB was built with another embedding model than the one asked for."""


class KBLockedError(KBError):
    """Another process is already writing to this knowledge base."""


class SettingsError(KBError):
    """An invalid setting (a KB_* variable or an option); the message names it and says what it expects."""
