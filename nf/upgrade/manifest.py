"""sha256 manifests of upgrade packages (RFC 7654 §3.1: verify what was downloaded).

The format is sha256sum's, so ``sha256sum -c MANIFEST.sha256`` run inside the
package checks it too: one line per file, ``<64 hex digits>  <path>`` (two
spaces; sha256sum's binary marker ``" *"`` is accepted), paths relative to the
package directory with ``/`` separators, sorted.  The manifest lists every
regular file of the package except itself.

``__pycache__`` directories are skipped, because Python writes them beside the
code it imports; a loader must therefore compile the verified sources and never
run cached bytecode.  Symbolic links are refused (they could point anywhere),
and so are listed paths that could leave the package (absolute, ``..``).
``verify_manifest`` reports every problem rather than stopping at the first, so
a refused upgrade says at once all that is wrong.

    python -m nf.upgrade.manifest write upgrades/nat-v2
    python -m nf.upgrade.manifest verify upgrades/nat-v2
"""

import hashlib
import os
import re
import sys

__all__ = ["MANIFEST", "write_manifest", "verify_manifest", "package_files", "file_digest"]

MANIFEST = "MANIFEST.sha256"
SKIP_DIRS = frozenset({"__pycache__"})
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def file_digest(path):
    """The sha256 of a file's contents, as lower-case hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def _unsafe_name(rel):
    # sha256sum escapes such names with a backslash; a package has no need of them
    return "\n" in rel or "\r" in rel or "\\" in rel


def package_files(root):
    """(sorted relative paths of the package's regular files, problems): symbolic
    links and unsafe names are problems; the manifest and __pycache__ are left out."""
    files, problems = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for d in list(dirnames):
            path = os.path.join(dirpath, d)
            if d in SKIP_DIRS:
                dirnames.remove(d)
            elif os.path.islink(path):
                dirnames.remove(d)                  # os.walk would not enter it anyway
                problems.append("symbolic link %s (not allowed in a package)"
                                % _rel(rel_dir, d))
        for name in filenames:
            rel = _rel(rel_dir, name)
            path = os.path.join(dirpath, name)
            if rel == MANIFEST:
                continue
            if os.path.islink(path):
                problems.append("symbolic link %s (not allowed in a package)" % rel)
            elif _unsafe_name(rel):
                problems.append("unsafe file name %r" % rel)
            elif os.path.isfile(path):
                files.append(rel)
            else:
                problems.append("%s is not a regular file" % rel)
    return sorted(files), problems


def _rel(rel_dir, name):
    return name if rel_dir == "." else "%s/%s" % (rel_dir.replace(os.sep, "/"), name)


def write_manifest(root):
    """Write ``root``/MANIFEST.sha256 for every file of the package; returns the
    paths listed.  Raises ValueError if the package holds links or unsafe names."""
    files, problems = package_files(root)
    if problems:
        raise ValueError("%s: cannot write a manifest: %s" % (root, "; ".join(problems)))
    lines = ["%s  %s\n" % (file_digest(os.path.join(root, rel)), rel) for rel in files]
    with open(os.path.join(root, MANIFEST), "w") as f:
        f.writelines(lines)
    return files


def _unsafe_path(rel):
    parts = rel.split("/")
    return (rel.startswith("/") or _unsafe_name(rel) or re.match(r"^[A-Za-z]:", rel)
            or any(p in ("", ".", "..") for p in parts))


def parse_manifest(text):
    """({relative path: hex digest}, problems) from a manifest's text."""
    entries, problems = {}, []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            problems.append("manifest line %d: expected '<sha256 hex>  <path>', got %r"
                            % (n, line[:80]))
            continue
        hexdigest, rel = m.group(1).lower(), m.group(2)
        if _unsafe_path(rel):
            problems.append("manifest line %d: unsafe path %r (expected a relative path "
                            "inside the package)" % (n, rel))
        elif rel in entries:
            problems.append("manifest line %d: %s listed twice" % (n, rel))
        else:
            entries[rel] = hexdigest
    return entries, problems


def verify_manifest(root):
    """Check the package at ``root`` against its MANIFEST.sha256; returns a list of
    problems (missing file, extra file, digest mismatch, unsafe path, malformed
    line, symbolic link), empty when the package is exactly what was listed."""
    path = os.path.join(root, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return ["cannot read %s: %s" % (path, e.strerror)]
    except UnicodeDecodeError:
        return ["%s is not UTF-8 text" % path]
    entries, problems = parse_manifest(text)
    files, file_problems = package_files(root)
    problems += file_problems
    present = set(files)
    for rel, expected in sorted(entries.items()):
        if rel not in present:
            if not os.path.islink(os.path.join(root, rel)):    # links: reported above
                problems.append("missing file %s" % rel)
        elif file_digest(os.path.join(root, rel)) != expected:
            problems.append("digest mismatch: %s" % rel)
    for rel in files:
        if rel not in entries:
            problems.append("extra file %s (not in the manifest)" % rel)
    return problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("write", "verify"):
        print("usage: python -m nf.upgrade.manifest write|verify PACKAGE_DIR", file=sys.stderr)
        return 2
    if argv[0] == "write":
        try:
            files = write_manifest(argv[1])
        except ValueError as e:
            print(e, file=sys.stderr)
            return 1
        print("%s: %d files listed in %s" % (argv[1], len(files), MANIFEST))
        return 0
    problems = verify_manifest(argv[1])
    for p in problems:
        print("%s: %s" % (argv[1], p), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
