"""Tokens of the Click language, with positions for error messages.

The lexer turns the whole text into a list of :class:`Token` in one pass with a
single regular expression; the parser then walks the list.  Two things are not
ordinary tokens, as in Click:

* a configuration string: everything between a ``(`` and its matching ``)``
  becomes one ``config`` token whose value is a :class:`Text` -- the raw
  string with comments removed, quotes and nested parentheses respected, which
  still knows where each of its characters came from (so that an undefined
  ``$x`` deep inside can be reported at its own line and column);
* comments (``//``, ``/* */``) and ``#`` lines (Click's preprocessor lines),
  which are skipped.

Identifiers follow Click: letters, digits, ``_`` and ``@``, joined by single
slashes (``a/b`` is one name; ``a//b`` is ``a`` and a comment).
"""

import bisect
import re

from ..errors import ConfigError, Location

__all__ = ["Source", "Text", "Token", "tokenize"]


class Source:
    """One configuration text and its file name; turns offsets into Locations."""

    __slots__ = ("filename", "text", "_line_starts")

    def __init__(self, text, filename="<config>"):
        self.text, self.filename = text, filename
        self._line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def loc(self, pos):
        line = bisect.bisect_right(self._line_starts, pos)
        return Location(self.filename, line, pos - self._line_starts[line - 1] + 1)

    def where(self, pos):
        """'line:col' of ``pos``, for messages that mention a second place."""
        loc = self.loc(pos)
        return "%d:%d" % (loc.line, loc.col)


class Text:
    """A configuration string with comments removed that maps each character
    back to its offset in the source.

    ``segs`` is a sorted list of (index in the clean string, source offset)
    pairs, one per stretch of characters copied unchanged; ``shift`` lets a
    slice share its parent's map.
    """

    __slots__ = ("text", "source", "_segs", "_shift")

    def __init__(self, text, source, segs, shift=0):
        self.text, self.source, self._segs, self._shift = text, source, segs, shift

    def __str__(self):
        return self.text

    def __repr__(self):
        return "Text(%r)" % self.text

    def offset(self, i):
        i += self._shift
        k = bisect.bisect_right(self._segs, (i, float("inf"))) - 1
        start, raw = self._segs[max(k, 0)]
        return raw + (i - start)

    def loc(self, i=0):
        return self.source.loc(self.offset(i))

    def sub(self, start, end):
        """The slice [start:end], still mapped to the source."""
        return Text(self.text[start:end], self.source, self._segs, self._shift + start)

    def strip(self):
        lead = len(self.text) - len(self.text.lstrip())
        return self.sub(lead, len(self.text.rstrip()))


class Token:
    """``kind`` is 'ident', 'var', 'config', 'eof' or the punctuation itself
    ('->', '::', '[', ']', '{', '}', '|', ',', ';', '=>', '||', '...')."""

    __slots__ = ("kind", "value", "pos")

    def __init__(self, kind, value, pos):
        self.kind, self.value, self.pos = kind, value, pos

    def describe(self):
        """How a message names this token: "identifier 'x'", "';'", "end of file"."""
        if self.kind == "eof":
            return "end of file"
        if self.kind == "ident":
            return "'%s'" % self.value
        if self.kind == "var":
            return "parameter '%s'" % self.value
        if self.kind == "config":
            return "'(' (a configuration string)"
        return "'%s'" % self.kind

    def __repr__(self):
        return "Token(%r, %r, %d)" % (self.kind, self.value, self.pos)


_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<newline>\n)
  | (?P<linecomment>//[^\n]*)
  | (?P<blockcomment>/\*)
  | (?P<ident>[A-Za-z0-9_@]+(?:/[A-Za-z0-9_@]+)*)
  | (?P<var>\$[A-Za-z0-9_]+)
  | (?P<punct>->|=>|::|\|\||\.\.\.|[\[\]{}|,;])
  | (?P<config>\()
  | (?P<hash>\#)
""", re.X)

# Inside a configuration string only these characters matter.
_CONFIG_SPECIAL = re.compile(r"""[()"'/\\]""")
_DQUOTE_END = re.compile(r'(?:\\.|[^"\\])*"', re.S)


def _error(source, pos, message):
    return ConfigError(message, source.loc(pos))


def tokenize(source):
    """All tokens of ``source`` (a :class:`Source`), ending with an 'eof' token."""
    text, tokens, pos, n = source.text, [], 0, len(source.text)
    line_start = True          # only blanks since the last newline: '#' starts a comment
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            raise _unexpected(source, pos)
        kind = m.lastgroup
        if kind == "space":
            pos = m.end()
            continue
        if kind == "newline":
            line_start, pos = True, m.end()
            continue
        if kind == "hash":
            if not line_start:
                raise _unexpected(source, pos)
            end = text.find("\n", pos)
            pos = n if end < 0 else end
            continue
        line_start = False
        if kind == "linecomment":
            pos = m.end()
        elif kind == "blockcomment":
            pos = _skip_block_comment(source, pos)
        elif kind == "config":
            value, pos = _lex_config(source, pos)
            tokens.append(Token("config", value, m.start()))
        elif kind == "punct":
            tokens.append(Token(m.group(), m.group(), pos))
            pos = m.end()
        else:
            tokens.append(Token(kind, m.group(), pos))
            pos = m.end()
    tokens.append(Token("eof", "", n))
    return tokens


def _unexpected(source, pos):
    c = source.text[pos]
    if c == ")":
        return _error(source, pos, "unexpected ')' with no '(' open")
    if c == "#":
        return _error(source, pos, "unexpected '#' (a '#' line must start with '#')")
    return _error(source, pos, "unexpected character %r" % c)


def _skip_block_comment(source, pos):
    end = source.text.find("*/", pos + 2)
    if end < 0:
        raise _error(source, pos, "unterminated comment: '/*' has no closing '*/'")
    return end + 2


def _lex_config(source, open_pos):
    """Read the configuration string after the '(' at ``open_pos``.

    Returns (Text, offset after the closing ')').  Comments are removed (a
    block comment leaves one space, as in Click); quotes and backslash-escaped
    characters are copied untouched and do not count as parentheses.
    """
    text = source.text
    pieces, segs, clean_len = [], [], 0
    depth, copy_from, pos = 1, open_pos + 1, open_pos + 1

    def copy(upto):
        """Keep the text from ``copy_from`` up to ``upto``."""
        nonlocal clean_len
        if upto > copy_from:
            segs.append((clean_len, copy_from))
            pieces.append(text[copy_from:upto])
            clean_len += upto - copy_from

    while True:
        m = _CONFIG_SPECIAL.search(text, pos)
        if m is None:
            raise _error(source, open_pos, "unbalanced '(' opened at %s: expected ')' before "
                         "end of file" % source.where(open_pos))
        c, at = m.group(), m.start()
        if c == "(":
            depth, pos = depth + 1, at + 1
        elif c == ")":
            depth, pos = depth - 1, at + 1
            if depth == 0:
                copy(at)
                break
        elif c == '"':
            q = _DQUOTE_END.match(text, at + 1)
            if q is None:
                raise _unterminated_string(source, at)
            pos = q.end()
        elif c == "'":
            end = text.find("'", at + 1)
            if end < 0:
                raise _unterminated_string(source, at)
            pos = end + 1
        elif c == "\\":
            pos = at + 2                       # '\(' does not count as a parenthesis
        elif text.startswith("//", at):
            copy(at)
            end = text.find("\n", at)
            copy_from = pos = len(text) if end < 0 else end
        elif text.startswith("/*", at):
            copy(at)
            end = _skip_block_comment(source, at)
            segs.append((clean_len, at))       # the comment becomes one space
            pieces.append(" ")
            clean_len += 1
            copy_from = pos = end
        else:
            pos = at + 1
    if not segs:
        segs.append((0, open_pos + 1))
    return Text("".join(pieces), source, segs).strip(), pos


def _unterminated_string(source, pos):
    return _error(source, pos, "unterminated string: the %s at %s has no closing quote"
                  % (source.text[pos], source.where(pos)))
