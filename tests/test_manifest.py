"""nf.upgrade.manifest: sha256sum-format manifests of upgrade packages, written and
verified; every kind of problem is reported, and sha256sum itself agrees."""

import hashlib
import os
import shutil
import subprocess

import pytest

from nf.upgrade.manifest import MANIFEST, verify_manifest, write_manifest


def make_package(root):
    (root / "elements").mkdir(parents=True)
    (root / "nat.click").write_text("Idle -> Discard;\n")
    (root / "elements" / "mod.py").write_text("X = 1\n")
    (root / "elements" / "blob.bin").write_bytes(bytes(range(256)))
    return root


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_written_manifest_lists_every_file_with_its_digest(tmp_path):
    pkg = make_package(tmp_path / "pkg")
    assert write_manifest(pkg) == ["elements/blob.bin", "elements/mod.py", "nat.click"]
    assert (pkg / MANIFEST).read_text() == (
        "%s  elements/blob.bin\n%s  elements/mod.py\n%s  nat.click\n"
        % (sha(bytes(range(256))), sha(b"X = 1\n"), sha(b"Idle -> Discard;\n")))
    assert verify_manifest(pkg) == []


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="no sha256sum")
def test_sha256sum_accepts_the_manifest(tmp_path):
    pkg = make_package(tmp_path / "pkg")
    write_manifest(pkg)
    done = subprocess.run(["sha256sum", "--quiet", "-c", MANIFEST], cwd=pkg,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_missing_extra_and_changed_files_are_all_reported(tmp_path):
    pkg = make_package(tmp_path / "pkg")
    write_manifest(pkg)
    (pkg / "nat.click").write_text("Idle -> Discard;  // changed\n")
    os.remove(pkg / "elements" / "blob.bin")
    (pkg / "elements" / "evil.py").write_text("import os\n")
    assert verify_manifest(pkg) == ["missing file elements/blob.bin",
                                    "digest mismatch: nat.click",
                                    "extra file elements/evil.py (not in the manifest)"]


@pytest.mark.parametrize("path", ["../outside.py", "/etc/passwd", "elements/../nat.click",
                                  "./nat.click", "elements//mod.py", "C:/x.py",
                                  "elements\\mod.py"])
def test_unsafe_paths_are_refused(tmp_path, path):
    pkg = make_package(tmp_path / "pkg")
    write_manifest(pkg)
    with open(pkg / MANIFEST, "a") as f:
        f.write("%s  %s\n" % ("0" * 64, path))
    problems = verify_manifest(pkg)
    assert len(problems) == 1 and "unsafe path" in problems[0], problems


def test_malformed_and_duplicate_lines(tmp_path):
    pkg = make_package(tmp_path / "pkg")
    write_manifest(pkg)
    text = (pkg / MANIFEST).read_text()
    first = text.splitlines()[0]
    (pkg / MANIFEST).write_text(text + first + "\nnot a manifest line\n\n")
    problems = verify_manifest(pkg)
    assert len(problems) == 2
    assert "line 4: elements/blob.bin listed twice" in problems[0]
    assert "line 5: expected '<sha256 hex>  <path>'" in problems[1]


def test_binary_marker_and_upper_case_hex_are_accepted(tmp_path):
    pkg = make_package(tmp_path / "pkg")
    write_manifest(pkg)
    lines = (pkg / MANIFEST).read_text().splitlines()
    h, rel = lines[0].split("  ", 1)
    lines[0] = "%s *%s" % (h.upper(), rel)
    (pkg / MANIFEST).write_text("\n".join(lines) + "\n")
    assert verify_manifest(pkg) == []


def test_symbolic_links_are_refused(tmp_path):
    pkg = make_package(tmp_path / "pkg")
    write_manifest(pkg)
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", pkg / "elements" / "link.py")
    os.symlink(tmp_path, pkg / "dirlink")
    problems = verify_manifest(pkg)
    assert problems == ["symbolic link dirlink (not allowed in a package)",
                        "symbolic link elements/link.py (not allowed in a package)"]
    with pytest.raises(ValueError, match="symbolic link"):
        write_manifest(pkg)


def test_bytecode_caches_are_ignored_and_no_manifest_is_a_problem(tmp_path):
    pkg = make_package(tmp_path / "pkg")
    assert "cannot read" in verify_manifest(pkg)[0]
    write_manifest(pkg)
    (pkg / "elements" / "__pycache__").mkdir()
    (pkg / "elements" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    assert verify_manifest(pkg) == []
