"""Tests for stui_repl.image.gst (finding gst), .install and .provision.

Everything except the ``network``-marked tests is pure logic or file layout;
the few tests that run a process run a tiny shell script standing in for gst.
Host names here are made up (``*.invalid``) on purpose.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from stui_repl.image import gst
from stui_repl.image import provision as pv
from stui_repl.image.gst import find_gst
from stui_repl.image.install import GstInstall, ProvisionError, load_install, parse_gst_version
from stui_repl.image.provision import (
    Archive,
    SourceEntry,
    apt_error_line,
    apt_options,
    choose_archive,
    library_dirs,
    missing_sonames,
    parse_deb822_sources,
    parse_one_line_sources,
    require_tools,
    sources_list_line,
)

MIRROR = "http://mirror.invalid/debian"
DEB_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
UBU_KEYRING = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"

DEBIAN_SOURCES = f"""\
Types: deb
# a snapshot of {MIRROR}
URIs: {MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: {DEB_KEYRING}

Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main
Signed-By: {DEB_KEYRING}
"""

THIRD_PARTY_SOURCES = """\
Types: deb
URIs: https://node.invalid/node_20.x
Suites: nodistro
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/nodesource.gpg
"""


def everything_exists(_path: str) -> bool:
    return True


def nothing_exists(_path: str) -> bool:
    return False


# --------------------------------------------------------------------------
# one-line sources


def test_one_line_basic_options_and_comments() -> None:
    text = f"""\
# the main archive
deb [arch=amd64 signed-by={DEB_KEYRING}] {MIRROR} bookworm main contrib  # trailing
deb-src {MIRROR} bookworm main
#deb http://disabled.invalid/debian bookworm main

deb [ trusted=yes ] http://local.invalid/repo ./
deb http://cloud.invalid/apt cloud-sdk-bookworm main
"""
    entries = parse_one_line_sources(text, "sources.list")
    assert [e.uri for e in entries] == [
        MIRROR,
        MIRROR,
        "http://local.invalid/repo",
        "http://cloud.invalid/apt",
    ]
    first = entries[0]
    assert first.types == ("deb",)
    assert first.suites == ("bookworm",)
    assert first.components == ("main", "contrib")
    assert first.signed_by == DEB_KEYRING
    assert first.origin == "sources.list"
    assert entries[1].types == ("deb-src",)
    assert entries[2].suites == ("./",) and entries[2].components == ()


def test_one_line_ignores_malformed_lines() -> None:
    text = f"deb [arch=amd64 {MIRROR} bookworm main\ndeb\nrpm {MIRROR} x\n"
    assert parse_one_line_sources(text) == []


# --------------------------------------------------------------------------
# deb822 sources


def test_deb822_stanzas_comments_and_fields() -> None:
    entries = parse_deb822_sources(DEBIAN_SOURCES + "\n" + THIRD_PARTY_SOURCES)
    assert [(e.uri, e.suites) for e in entries] == [
        (MIRROR, ("bookworm", "bookworm-updates")),
        ("http://security.invalid/debian-security", ("bookworm-security",)),
        ("https://node.invalid/node_20.x", ("nodistro",)),
    ]
    assert entries[0].signed_by == DEB_KEYRING
    assert entries[0].types == ("deb",)


def test_deb822_disabled_multiple_uris_case_and_embedded_key() -> None:
    text = f"""\
types: deb deb-src
uris: {MIRROR} http://mirror2.invalid/debian
suites: bookworm
components: main
signed-by:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBFxyz
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
URIs: http://off.invalid/debian
Suites: bookworm
Components: main
Enabled: no
"""
    entries = parse_deb822_sources(text)
    assert [e.uri for e in entries] == [MIRROR, "http://mirror2.invalid/debian"]
    assert entries[0].types == ("deb", "deb-src")
    assert entries[0].signed_by is not None
    assert entries[0].signed_by.startswith("-----BEGIN")


# --------------------------------------------------------------------------
# choosing the archive


def test_choose_debian_main_archive_over_security_and_third_party() -> None:
    entries = [
        *parse_one_line_sources("deb http://cloud.invalid/apt cloud-sdk-bookworm main\n"),
        *parse_deb822_sources(THIRD_PARTY_SOURCES),
        *parse_deb822_sources(DEBIAN_SOURCES),
    ]
    archive = choose_archive(entries, file_exists=everything_exists)
    assert archive == Archive("debian", MIRROR, "bullseye", ("main",), DEB_KEYRING)


def test_third_party_with_debian_codename_is_skipped() -> None:
    text = f"""\
deb [signed-by=/usr/share/keyrings/vendor.gpg] http://vendor.invalid/debian bookworm main
deb http://pg.invalid/apt bookworm-pgdg main
deb {MIRROR} bookworm main
"""
    archive = choose_archive(parse_one_line_sources(text), file_exists=everything_exists)
    assert archive.uri == MIRROR


def test_prefers_entry_signed_by_archive_keyring() -> None:
    text = f"""\
deb http://other.invalid/apt bookworm main
deb [signed-by={DEB_KEYRING}] {MIRROR} bookworm main
"""
    archive = choose_archive(parse_one_line_sources(text), file_exists=everything_exists)
    assert archive.uri == MIRROR


def test_security_only_or_third_party_only_is_an_error() -> None:
    security = parse_one_line_sources(
        "deb http://security.invalid/debian-security bookworm-security main\n"
        "deb http://security.invalid/debian-security buster/updates main\n"
    )
    for entries in (security, parse_deb822_sources(THIRD_PARTY_SOURCES), []):
        with pytest.raises(ProvisionError) as err:
            choose_archive(entries, file_exists=everything_exists)
        assert "No Debian or Ubuntu archive" in str(err.value)
        assert "STUI_GST" in str(err.value)


def test_keyring_falls_back_to_full_archive_keyring() -> None:
    # A per-release keyring cannot verify bullseye; the full one can.
    release_only = "/usr/share/keyrings/debian-archive-bookworm-stable.gpg"
    entries = parse_one_line_sources(f"deb [signed-by={release_only}] {MIRROR} bookworm main\n")
    assert choose_archive(entries, file_exists=everything_exists).keyring == DEB_KEYRING
    only_own = choose_archive(entries, file_exists=lambda p: p == release_only)
    assert only_own.keyring == release_only
    assert choose_archive(entries, file_exists=nothing_exists).keyring is None


def test_ubuntu_archive_uses_focal_main_universe() -> None:
    text = """\
Types: deb
URIs: http://archive.invalid/ubuntu/
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://security.invalid/ubuntu/
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
"""
    archive = choose_archive(parse_deb822_sources(text), file_exists=everything_exists)
    assert archive == Archive(
        "ubuntu",
        "http://archive.invalid/ubuntu/",
        "focal",
        ("main", "universe"),
        UBU_KEYRING,
    )


# --------------------------------------------------------------------------
# private apt configuration


def test_sources_list_line() -> None:
    archive = Archive("debian", MIRROR, "bullseye", ("main",), DEB_KEYRING)
    assert sources_list_line(archive, "amd64") == (f"deb [arch=amd64 signed-by={DEB_KEYRING}] {MIRROR} bullseye main")
    unsigned = Archive("ubuntu", MIRROR, "focal", ("main", "universe"), None)
    assert sources_list_line(unsigned) == f"deb {MIRROR} focal main universe"


def test_apt_options_keep_everything_private(tmp_path: Path) -> None:
    opts = apt_options(tmp_path)
    joined = " ".join(opts)
    assert f"Dir::Etc::SourceList={tmp_path / 'sources.list'}" in opts
    assert "Dir::Etc::SourceParts=/dev/null" in opts
    assert f"Dir::State::Lists={tmp_path / 'lists'}" in opts
    assert f"Dir::Cache={tmp_path / 'cache'}" in opts
    assert "Dir::State::status=/dev/null" in opts
    assert opts[opts.index("-c") + 1] == str(tmp_path / "apt.conf")
    assert "/etc/apt" not in joined and "/var/" not in joined
    assert "APT::Sandbox::User=root" not in opts
    assert "APT::Sandbox::User=root" in apt_options(tmp_path, as_root=True)


def test_private_apt_conf_drops_update_hooks() -> None:
    assert "#clear APT::Update::Post-Invoke-Success;" in pv.PRIVATE_APT_CONF
    assert "#clear APT::Update::Post-Invoke;" in pv.PRIVATE_APT_CONF


def test_apt_error_line_picks_the_useful_line() -> None:
    offline = (
        "W: Failed to fetch http://mirror.invalid/debian/dists/bullseye/InRelease"
        "  Could not resolve 'mirror.invalid'\n"
        "W: Some index files failed to download. They have been ignored, "
        "or old ones used instead.\n"
    )
    assert apt_error_line(offline) == (
        "Failed to fetch http://mirror.invalid/debian/dists/bullseye/InRelease Could not resolve 'mirror.invalid'"
    )
    unsigned = (
        "W: GPG error: http://mirror.invalid/debian bullseye InRelease: The following "
        "signatures couldn't be verified because the public key is not available: "
        "NO_PUBKEY 0E98404D386FA1D9\n"
        "E: The repository 'http://mirror.invalid/debian bullseye InRelease' is not signed.\n"
    )
    assert apt_error_line(unsigned).startswith("GPG error:")
    missing = (
        "W: Download is performed unsandboxed as root as file 'x' couldn't be accessed\n"
        "E: Unable to locate package gnu-smalltalk\n"
    )
    assert apt_error_line(missing) == "Unable to locate package gnu-smalltalk"
    assert apt_error_line("", "Reading package lists...\nsomething odd\n") == "something odd"
    assert apt_error_line("") == "apt-get failed without a message"


def test_require_tools_errors_tell_how_to_get_gst() -> None:
    def no_apt(tool: str) -> str | None:
        return None if tool == "apt-get" else f"/usr/bin/{tool}"

    with pytest.raises(ProvisionError) as err:
        require_tools(which=no_apt, platform="linux")
    message = str(err.value)
    assert len(message.splitlines()) <= 2
    for hint in ("brew install gnu-smalltalk", "apt install gnu-smalltalk",
                 "dnf install gnu-smalltalk", "STUI_GST"):  # fmt: skip
        assert hint in message

    def everything(tool: str) -> str:
        return f"/usr/bin/{tool}"

    with pytest.raises(ProvisionError, match="brew install gnu-smalltalk"):
        require_tools(which=everything, platform="darwin")
    assert require_tools(which=everything, platform="linux") == {
        "apt-get": "/usr/bin/apt-get",
        "dpkg-deb": "/usr/bin/dpkg-deb",
    }


# --------------------------------------------------------------------------
# small parsers and layout


def test_parse_gst_version() -> None:
    assert parse_gst_version("GNU Smalltalk version 3.2.5\nCopyright 2009\n") == "3.2.5"
    assert parse_gst_version("GNU Smalltalk version 3.2.91-b1\n") == "3.2.91-b1"
    assert parse_gst_version("gst: command not understood") is None


def test_missing_sonames() -> None:
    ldd = (
        "\tlinux-vdso.so.1 (0x00007ffd)\n"
        "\tlibgst.so.7 => /x/usr/lib/libgst.so.7 (0x00007f)\n"
        "\tlibreadline.so.8 => not found\n"
        "\tlibffi.so.7 => not found\n"
    )
    assert missing_sonames(ldd) == ["libreadline.so.8", "libffi.so.7"]


def test_library_dirs(tmp_path: Path) -> None:
    for d in (
        "usr/lib/x86_64-linux-gnu",
        "lib/x86_64-linux-gnu",
        "usr/lib/gnu-smalltalk",
    ):
        (tmp_path / d).mkdir(parents=True)
    expected = [
        tmp_path / "usr/lib",
        tmp_path / "usr/lib/x86_64-linux-gnu",
        tmp_path / "lib/x86_64-linux-gnu",
    ]
    assert library_dirs(tmp_path, "x86_64-linux-gnu") == expected
    assert library_dirs(tmp_path, None) == expected  # found by scanning


def test_read_apt_sources_reads_both_formats(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("# empty on purpose\n")
    (tmp_path / "sources.list.d/debian.sources").write_text(DEBIAN_SOURCES)
    (tmp_path / "sources.list.d/vendor.list").write_text("deb http://v.invalid/apt x main\n")
    (tmp_path / "sources.list.d/old.list.disabled").write_text(f"deb {MIRROR} sid main\n")
    entries = pv.read_apt_sources(tmp_path)
    assert [e.uri for e in entries] == [
        MIRROR,
        "http://security.invalid/debian-security",
        "http://v.invalid/apt",
    ]


# --------------------------------------------------------------------------
# GstInstall


def test_command_and_environ() -> None:
    inst = GstInstall(
        gst=Path("/c/root/usr/bin/gst"),
        env={"LD_LIBRARY_PATH": "/c/root/usr/lib"},
        base_args=("-g", "-I", "/c/image/gst.im", "--kernel-directory", "/c/k"),
        image_dir=Path("/c/image"),
        version="3.2.5",
        source="provisioned",
    )
    assert inst.command("x.st") == [
        "/c/root/usr/bin/gst", "-g", "-I", "/c/image/gst.im",
        "--kernel-directory", "/c/k", "x.st",
    ]  # fmt: skip
    assert inst.command("x.st", image="/s/server.im")[3] == "/s/server.im"
    env = inst.environ({"PATH": "/bin", "LD_LIBRARY_PATH": "/opt/lib"})
    assert env == {"PATH": "/bin", "LD_LIBRARY_PATH": "/c/root/usr/lib:/opt/lib"}
    assert inst.environ({})["LD_LIBRARY_PATH"] == "/c/root/usr/lib"

    system = GstInstall(Path("/usr/bin/gst"), {}, ("-g",), None, "3.2.5", "PATH")
    assert system.image is None
    assert system.command("-", image="/s/a.im") == [
        "/usr/bin/gst",
        "-g",
        "-I",
        "/s/a.im",
        "-",
    ]


# --------------------------------------------------------------------------
# find_gst


def fake_gst(directory: Path, version: str = "3.2.5", status: int = 0) -> Path:
    """A shell script answering ``--version`` like gst does."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "gst"
    script.write_text(f"#!/bin/sh\necho 'GNU Smalltalk version {version}'\nexit {status}\n")
    script.chmod(0o755)
    return script


def fake_install(directory: Path) -> Path:
    """The file layout of a complete provisioned install (nothing runnable)."""
    (directory / "root/usr/bin").mkdir(parents=True)
    (directory / "root/usr/bin/gst").write_text("")
    (directory / "image").mkdir()
    (directory / "image/gst.im").write_text("")
    manifest = {
        "format": pv.MANIFEST_FORMAT,
        "version": "3.2.5",
        "gst": "root/usr/bin/gst",
        "image_dir": "image",
        "kernel_dir": "root/usr/share/gnu-smalltalk/kernel",
        "library_dirs": ["root/usr/lib", "root/usr/lib/x86_64-linux-gnu"],
    }
    (directory / pv.MANIFEST).write_text(json.dumps(manifest))
    return directory


def test_find_gst_honours_stui_gst(tmp_path: Path) -> None:
    gst = fake_gst(tmp_path / "bin")
    inst = find_gst(environ={"STUI_GST": str(gst), "PATH": ""}, cache=tmp_path / "none")
    assert inst is not None
    assert (inst.gst, inst.version, inst.source) == (gst, "3.2.5", "STUI_GST")
    assert inst.base_args == ("-g",) and inst.image_dir is None and inst.env == {}


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda d: d / "nope", "not an executable file"),
        (lambda d: fake_gst(d, status=3), "not a runnable GNU Smalltalk"),
        (lambda d: fake_gst(d, version="4.0.1"), "needs 3.x"),
    ],
)
def test_bad_stui_gst_names_the_variable(tmp_path: Path, setup, expected: str) -> None:
    value = str(setup(tmp_path))
    with pytest.raises(ProvisionError) as err:
        find_gst(environ={"STUI_GST": value, "PATH": ""}, cache=tmp_path / "none")
    assert f"STUI_GST={value}" in str(err.value)
    assert expected in str(err.value)


def test_find_gst_on_path(tmp_path: Path) -> None:
    gst = fake_gst(tmp_path / "bin")
    cache = fake_install(tmp_path / "cache")
    inst = find_gst(environ={"PATH": str(gst.parent)}, cache=cache)
    assert inst is not None and inst.source == "PATH" and inst.gst == gst


def test_path_gst_of_wrong_version_falls_back_to_cache(tmp_path: Path) -> None:
    gst = fake_gst(tmp_path / "bin", version="4.0.1")
    cache = fake_install(tmp_path / "cache")
    inst = find_gst(environ={"PATH": str(gst.parent)}, cache=cache)
    assert inst is not None and inst.source == "provisioned"


def test_find_gst_in_cache(tmp_path: Path) -> None:
    cache = fake_install(tmp_path / "gst-3.2.5")
    inst = find_gst(environ={"PATH": str(tmp_path / "empty")}, cache=cache)
    assert inst is not None
    assert inst.source == "provisioned"
    assert inst.gst == cache / "root/usr/bin/gst"
    assert inst.image == cache / "image/gst.im"
    assert inst.env == {"LD_LIBRARY_PATH": f"{cache}/root/usr/lib:{cache}/root/usr/lib/x86_64-linux-gnu"}
    assert inst.base_args == (
        "-g", "-I", str(cache / "image/gst.im"),
        "--kernel-directory", str(cache / "root/usr/share/gnu-smalltalk/kernel"),
    )  # fmt: skip


def test_incomplete_install_is_ignored(tmp_path: Path) -> None:
    cache = fake_install(tmp_path / "gst-3.2.5")
    (cache / pv.MANIFEST).unlink()  # as after a killed provision
    assert find_gst(environ={"PATH": ""}, cache=cache) is None
    fake_install(tmp_path / "other")
    (tmp_path / "other/image/gst.im").unlink()
    assert load_install(tmp_path / "other") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / pv.MANIFEST).write_text("{not json")
    assert load_install(tmp_path / "bad") is None


def test_provision_returns_complete_install_without_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUI_HOME", str(tmp_path))
    fake_install(pv.install_dir())
    monkeypatch.setattr(pv, "require_tools", lambda: pytest.fail("should not need apt"))
    assert pv.provision().source == "provisioned"


def test_ensure_gst_without_provisioning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUI_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("STUI_GST", raising=False)
    with pytest.raises(ProvisionError, match="not found"):
        gst.ensure_gst(allow_provision=False)
    assert gst.main(["--no-download"]) == 1


def test_source_entry_is_plain_data() -> None:
    e = SourceEntry(("deb",), MIRROR, ("bookworm",), ("main",))
    assert e.signed_by is None and e.origin == ""


# --------------------------------------------------------------------------
# integration: a real download (needs Debian's packages over the network)

needs_apt = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
    reason="apt-get/dpkg-deb not available: provisioning needs a Debian or Ubuntu host",
)


@pytest.mark.network
@needs_apt
def test_provision_for_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUI_HOME", str(tmp_path / "home"))
    messages: list[str] = []
    started = time.monotonic()
    inst = pv.provision(progress=messages.append)
    elapsed = time.monotonic() - started
    print(f"provisioned in {elapsed:.1f} s")

    assert inst.source == "provisioned" and inst.version == "3.2.5"
    assert "checking gst" in messages
    cache = tmp_path / "home/cache"
    assert sorted(p.name for p in cache.iterdir()) == ["gst-3.2.5", "gst-3.2.5.lock"]
    assert not list(cache.rglob("*.deb"))

    script = tmp_path / "t.st"
    script.write_text("(3 + 4) printNl.\n(PackageLoader fileInPackage: 'Sockets') printNl.\n")
    proc = subprocess.run(
        inst.command(str(script)), env=inst.environ(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "7"
    assert "Error" not in proc.stdout

    again = pv.provision()  # idempotent: nothing downloaded
    assert again == inst
    assert find_gst(environ={"PATH": str(tmp_path / "empty")}) == inst


@pytest.mark.network
@needs_apt
def test_unreachable_mirror_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "sources.list").write_text(f"deb {MIRROR} bookworm main\n")
    monkeypatch.setattr(pv, "APT_ETC", etc)
    monkeypatch.setenv("STUI_HOME", str(tmp_path / "home"))
    real_options = pv.apt_options
    monkeypatch.setattr(  # no retries: fail fast
        pv,
        "apt_options",
        lambda *a, **k: [*real_options(*a, **k), "-o", "Acquire::Retries=0"],
    )
    with pytest.raises(ProvisionError) as err:
        pv.provision()
    assert str(err.value).startswith("apt-get update failed:")
    assert "mirror.invalid" in str(err.value) and "\n" not in str(err.value)
    assert [p.name for p in (tmp_path / "home/cache").iterdir()] == ["gst-3.2.5.lock"]
