"""Errors that point at their source: file, line and column."""


class Location:
    __slots__ = ("file", "line", "col")

    def __init__(self, file="<config>", line=1, col=1):
        self.file, self.line, self.col = file, line, col

    def __str__(self):
        return "%s:%d:%d" % (self.file, self.line, self.col)

    def __repr__(self):
        return "Location(%r, %d, %d)" % (self.file, self.line, self.col)


class ConfigError(Exception):
    """A configuration error.  ``str()`` gives 'file:line:col: message'."""

    def __init__(self, message, loc=None):
        super().__init__(message)
        self.message = message
        self.loc = loc

    def __str__(self):
        return "%s: %s" % (self.loc, self.message) if self.loc else self.message


class ConfigErrors(ConfigError):
    """Several configuration errors at once (the checker reports them all)."""

    def __init__(self, errors):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = list(errors)

    def __str__(self):
        return "\n".join(str(e) for e in self.errors)


class HandlerError(Exception):
    """A handler refused a read or write; the message goes to the client."""
