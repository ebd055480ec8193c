"""Artifact path rules: normalizing user paths and walking local folders safely."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtrack.errors import ValidationError
from vtrack.pathsafety import join_artifact_path, normalize_artifact_path, walk_folder

# --- normalize_artifact_path ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("model.pkl", "model.pkl"),
        ("a/./b", "a/b"),
        ("a//b///c", "a/b/c"),
        ("./a", "a"),
        ("a/", "a"),
        ("plots/loss curve.png", "plots/loss curve.png"),
        ("données/été.csv", "données/été.csv"),
        ("...", "..."),
        ("..a/b..", "..a/b.."),
        (".vtrack/x", ".vtrack/x"),
        (".github/x", ".github/x"),
        (".gitignore", ".gitignore"),
    ],
)
def test_normalize_accepts_and_cleans_relative_paths(raw: str, expected: str) -> None:
    assert normalize_artifact_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("", "empty"),
        (".", "empty"),
        ("./", "empty"),
        ("//", "absolute"),
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("C:\\x", "backslash"),
        ("\\\\server\\share", "backslash"),
        ("a\\b", "backslash"),
        ("C:/x", "drive"),
        ("c:x", "drive"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/../b", "'..'"),
        ("a/..", "'..'"),
        ("..", "'..'"),
        ("a\x00b", "NUL"),
        (".git/config", "git"),
        ("a/.GIT/hooks/x", "git"),
        ("x/.git. /y", "git"),
        ("GIT~1/config", "git"),
        (".git::$INDEX_ALLOCATION/x", "git"),
        ("\udcff.bin", "UTF-8"),
    ],
)
def test_normalize_refuses_naming_path_and_rule(raw: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        normalize_artifact_path(raw)
    assert repr(raw) in str(info.value)
    assert rule in str(info.value)


@pytest.mark.parametrize("raw", [None, b"a/b", 3])
def test_normalize_refuses_non_strings(raw: object) -> None:
    with pytest.raises(ValidationError, match="must be a str"):
        normalize_artifact_path(raw)  # type: ignore[arg-type]


_tricky = st.text(alphabet=["a", "b", ".", "/", "\\", ":", "C", "\x00", " ", "é"], max_size=24)


@given(st.one_of(_tricky, st.text(max_size=40)))
def test_normalize_never_returns_an_unsafe_path_and_is_idempotent(raw: str) -> None:
    try:
        out = normalize_artifact_path(raw)
    except ValidationError:
        return
    parts = out.split("/")
    assert out and not out.startswith("/")
    assert all(part not in ("", ".", "..") for part in parts)
    assert "\\" not in out and "\x00" not in out
    assert normalize_artifact_path(out) == out


_component = st.text(
    alphabet=st.characters(blacklist_characters="/\\\x00", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=8,
).filter(lambda c: c not in (".", "..") and not c.lower().startswith((".git", "git~1")))


@given(
    st.lists(_component, min_size=1, max_size=5).filter(
        lambda cs: not (len(cs[0]) >= 2 and cs[0][1] == ":")
    ),
    st.lists(st.sampled_from(["/", "//", "/./", "/././/"]), min_size=5, max_size=5),
    st.booleans(),
)
def test_normalize_joins_components_with_single_slashes(
    components: list[str], seps: list[str], lead_dot: bool
) -> None:
    raw = ("./" if lead_dot else "") + "".join(
        c + s for c, s in zip(components, seps, strict=False)
    )
    assert normalize_artifact_path(raw) == "/".join(components)


# --- join_artifact_path ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "name", "expected"),
    [
        (None, "model.pkl", "model.pkl"),
        ("", "model.pkl", "model.pkl"),
        ("models", "model.pkl", "models/model.pkl"),
        ("models/./v1/", "sub/w.bin", "models/v1/sub/w.bin"),
        (".", "x", "x"),
        ("./", "a/b", "a/b"),
    ],
)
def test_join_puts_name_inside_folder(folder: str | None, name: str, expected: str) -> None:
    assert join_artifact_path(folder, name) == expected


@pytest.mark.parametrize(
    ("folder", "name", "named"),
    [
        ("/abs", "x", "/abs"),
        ("a/../..", "x", "a/../.."),
        ("models", "../escape", "../escape"),
        ("models", "", "''"),
        ("models", "/etc/passwd", "/etc/passwd"),
    ],
)
def test_join_refuses_unsafe_parts_naming_them(folder: str, name: str, named: str) -> None:
    with pytest.raises(ValidationError, match=named.replace(".", r"\.")):
        join_artifact_path(folder, name)


# --- walk_folder -----------------------------------------------------------------------


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_walk_lists_every_file_sorted_with_absolute_paths(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "out", {"b.txt": b"b", "a/z.bin": b"z", "a/b/c.txt": b"c", "a.txt": b"a"}
    )
    (root / "empty_dir").mkdir()

    listed = walk_folder(root)

    assert [rel for rel, _ in listed] == ["a.txt", "a/b/c.txt", "a/z.bin", "b.txt"]
    for rel, path in listed:
        assert path.is_absolute() and path.read_bytes() == (root / rel).read_bytes()


def test_walk_of_empty_folder_is_empty(tmp_path: Path) -> None:
    assert walk_folder(tmp_path) == []


def test_walk_refuses_what_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    for target in (tmp_path / "file", tmp_path / "missing"):
        with pytest.raises(ValidationError, match="not a directory"):
            walk_folder(target)


def test_walk_stores_a_symlink_to_an_inside_file_as_that_file(tmp_path: Path) -> None:
    root = _tree(tmp_path / "out", {"data/real.bin": b"payload"})
    (root / "alias.bin").symlink_to("data/real.bin")
    (root / "chain.bin").symlink_to("alias.bin")

    listed = dict(walk_folder(root))

    assert set(listed) == {"alias.bin", "chain.bin", "data/real.bin"}
    real = (root / "data" / "real.bin").resolve()
    assert listed["alias.bin"] == real and listed["chain.bin"] == real


def test_walk_follows_a_symlinked_directory_inside_the_folder(tmp_path: Path) -> None:
    root = _tree(tmp_path / "out", {"v1/w.bin": b"w", "v1/sub/x.bin": b"x"})
    (root / "latest").symlink_to("v1", target_is_directory=True)

    assert [rel for rel, _ in walk_folder(root)] == [
        "latest/sub/x.bin",
        "latest/w.bin",
        "v1/sub/x.bin",
        "v1/w.bin",
    ]


def test_walk_of_a_symlinked_folder_lists_its_files(tmp_path: Path) -> None:
    root = _tree(tmp_path / "real", {"a.txt": b"a"})
    link = tmp_path / "link"
    link.symlink_to(root, target_is_directory=True)
    assert [rel for rel, _ in walk_folder(link)] == ["a.txt"]


@pytest.mark.parametrize("target_kind", ["file", "dir", "parent"])
def test_walk_refuses_a_symlink_escaping_the_folder(tmp_path: Path, target_kind: str) -> None:
    outside = _tree(tmp_path / "secret", {"id_rsa": b"key"})
    root = _tree(tmp_path / "out", {"ok.txt": b"ok"})
    target = {"file": outside / "id_rsa", "dir": outside, "parent": Path("../..")}[target_kind]
    (root / "sub").mkdir()
    (root / "sub" / "escape").symlink_to(target)

    with pytest.raises(ValidationError, match="escape") as info:
        walk_folder(root)
    assert "outside the folder" in str(info.value)


def test_walk_refuses_a_dangling_symlink(tmp_path: Path) -> None:
    root = _tree(tmp_path / "out", {"ok.txt": b"ok"})
    (root / "gone").symlink_to("nowhere.bin")
    with pytest.raises(ValidationError, match="does not exist"):
        walk_folder(root)


@pytest.mark.parametrize("target", [".", "..", "../.."])
def test_walk_refuses_a_symlink_cycle(tmp_path: Path, target: str) -> None:
    root = _tree(tmp_path / "out", {"a/b/f.txt": b"f"})
    (root / "a" / "b" / "loop").symlink_to(target, target_is_directory=True)
    with pytest.raises(ValidationError, match="cycle") as info:
        walk_folder(root)
    assert "loop" in str(info.value)


def test_walk_refuses_a_fifo(tmp_path: Path) -> None:
    root = _tree(tmp_path / "out", {"ok.txt": b"ok"})
    os.mkfifo(root / "pipe")
    with pytest.raises(ValidationError, match="pipe.*FIFO"):
        walk_folder(root)


def test_walk_refuses_a_symlink_to_a_fifo(tmp_path: Path) -> None:
    root = _tree(tmp_path / "out", {"ok.txt": b"ok"})
    os.mkfifo(root / "pipe")
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "link").symlink_to(root / "pipe")
    with pytest.raises(ValidationError, match="FIFO"):
        walk_folder(root)


def test_walk_refuses_a_socket(tmp_path: Path) -> None:
    root = tmp_path / "s"  # short path: AF_UNIX names are limited to ~100 bytes
    root.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "sock"))
        with pytest.raises(ValidationError, match="socket"):
            walk_folder(root)
    finally:
        sock.close()


def test_walk_refuses_file_names_that_are_not_valid_artifact_paths(tmp_path: Path) -> None:
    root = _tree(tmp_path / "out", {"a\\b.txt": b"x"})
    with pytest.raises(ValidationError, match="backslash"):
        walk_folder(root)
