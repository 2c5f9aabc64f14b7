"""The worlds the crash harness (:mod:`tests.support.crash`) kills commands in: one per
scenario, each with its originals, the command, and what may be visible after a kill."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from envelope import ClusterSecret, Envelope, LocalKms
from envelope.keystore import FileKeyStore, StoredKey

#: The hidden name an atomic replace gives the finished file just before renaming it over
#: the target (envelope._atomic): a kill between the two calls leaves it, complete, until
#: the next write into the directory removes it (docs/threat-model.md, "SIGKILL").
REPLACE_TEMP = re.compile(r"^(?P<dir>(?:.*/)?)\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")

__all__ = ["SCENARIOS", "World"]

BIG = 24 * 1024 * 1024  # a single file big enough to be killed in the middle of
CONTEXT = {"service": "crash"}


class World:
    """A directory with a keyring, a cluster-secret part and originals, and a command."""

    argv: list[str]

    def __init__(self, root: Path) -> None:
        self.root = root
        self.marker = b"PLAINTEXT-MARKER-" + secrets.token_hex(8).encode()
        self.kms = LocalKms.create(root / "keyring.json")
        self.part = root / "cluster.key"
        self.part.write_bytes(os.urandom(32))
        self.originals: dict[Path, bytes] = {}  # message file -> its plaintext
        self.allowed: set[str] = {"keyring.json", "cluster.key"}
        self.plaintext_ok: set[str] = set()

    # -- building --------------------------------------------------------------------

    def plaintext(self, size: int) -> bytes:
        return self.marker + os.urandom(max(0, size - len(self.marker)))

    def seal(self, rel: str, size: int, env: Envelope | None = None) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        plain = self.plaintext(size)
        path.write_bytes((env or self.envelope()).encrypt(plain, CONTEXT))
        self.originals[path] = plain
        self.allowed.add(rel)
        return path

    def envelope(self) -> Envelope:
        """As a later reader builds it: keyring and parts read from disk now."""
        return Envelope(LocalKms.open(self.root / "keyring.json"), self.cluster())

    def cluster(self) -> ClusterSecret:
        return ClusterSecret.from_file(self.part)

    # -- checking --------------------------------------------------------------------

    def check(self, *, finished: bool) -> list[str]:
        """What is wrong now: lost originals, unexpected or plaintext files."""
        problems = []
        try:
            env = self.envelope()
        except Exception as exc:
            return [f"keys no longer load: {exc!r}"]
        for path, plain in self.originals.items():
            try:
                got = env.decrypt(path.read_bytes(), CONTEXT)
            except Exception as exc:
                problems.append(f"{path.relative_to(self.root)} no longer decrypts: {exc!r}")
                continue
            if got != plain:
                problems.append(f"{path.relative_to(self.root)} decrypts to other bytes")
        for rel in self.files():
            target = self.replace_target(rel)
            shown = target if target is not None else rel  # a temp holds what its target may
            if target is None and not self.is_allowed(rel):
                problems.append(f"unexpected file {rel}")
            elif shown not in self.plaintext_ok and self.marker in (self.root / rel).read_bytes():
                problems.append(f"plaintext in {rel}")
        return problems + self.check_outputs(finished=finished)

    def files(self) -> list[str]:
        """Every non-directory entry under root, relative (hidden ones included)."""
        out = []
        for dirpath, dirs, names in os.walk(self.root):
            rel_dir = Path(dirpath).relative_to(self.root)
            if self.skip_dir(rel_dir):
                dirs[:] = []
                continue
            out += [(rel_dir / n).as_posix() for n in names]
        return sorted(out)

    def skip_dir(self, rel: Path) -> bool:
        return False

    def is_allowed(self, rel: str) -> bool:
        return rel in self.allowed

    def check_outputs(self, *, finished: bool) -> list[str]:
        return []

    def replace_target(self, rel: str) -> str | None:
        """The allowed file that ``rel`` is a *complete* replace temporary of, else None
        (a partial one is what a kill must never leave)."""
        match = REPLACE_TEMP.match(rel)
        if match is None or not self.is_allowed(target := match["dir"] + match["name"]):
            return None
        return target if self.complete_output(target, (self.root / rel).read_bytes()) else None

    def complete_output(self, target: str, data: bytes) -> bool:
        """True if ``data`` is a finished version of ``target``: a message that still
        decrypts to its original plaintext."""
        plain = self.originals.get(self.root / target)
        if plain is None:
            return False
        try:
            return self.envelope().decrypt(data, CONTEXT) == plain
        except Exception:
            return False

    def stale_hidden(self) -> int:
        """Replace temporaries a kill left (each must be gone after the rerun)."""
        return sum(1 for rel in self.files() if self.replace_target(rel) is not None)


class Encrypt(World):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.plain = self.plaintext(BIG)
        (root / "plain.bin").write_bytes(self.plain)
        self.allowed |= {"plain.bin", "out.env"}
        self.plaintext_ok = {"plain.bin"}
        self.argv = ["encrypt", "plain.bin", "-o", "out.env", "--cluster-secret", "cluster.key"]
        self.argv += ["-c", "service=crash"]

    def check_outputs(self, *, finished: bool) -> list[str]:
        out = self.root / "out.env"
        if (self.root / "plain.bin").read_bytes() != self.plain:
            return ["the input changed"]
        if not out.exists():
            return ["no output after a finished run"] if finished else []
        try:
            ok = self.envelope().decrypt(out.read_bytes(), CONTEXT) == self.plain
        except Exception as exc:
            return [f"partial or bad output out.env: {exc!r}"]
        return [] if ok else ["out.env decrypts to other bytes"]


class Decrypt(World):
    replace = False

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.sealed = self.seal("sealed.env", BIG)
        self.old = b"the previous contents\n"
        if self.replace:
            (root / "out.txt").write_bytes(self.old)
        self.allowed.add("out.txt")
        self.plaintext_ok = {"out.txt"}
        self.argv = ["decrypt", "sealed.env", "-o", "out.txt", "--cluster-secret", "cluster.key"]
        self.argv += ["-c", "service=crash"]

    def complete_output(self, target: str, data: bytes) -> bool:
        return target == "out.txt" and data == self.originals[self.sealed]

    def check_outputs(self, *, finished: bool) -> list[str]:
        out = self.root / "out.txt"
        if not out.exists():
            return ["no output after a finished run"] if finished or self.replace else []
        got = out.read_bytes()
        if got == self.originals[self.sealed]:
            return []
        if got == self.old and not finished:
            return []
        return [f"out.txt is partial or wrong ({len(got)} bytes)"]


class DecryptReplace(Decrypt):
    replace = True


class Rewrap(World):
    count = 80

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        env = self.envelope()
        self.sealed = [
            self.seal(f"msgs/m{i:03d}.env", 96 * 1024 if i % 10 else 2 * 1024 * 1024, env)
            for i in range(self.count)
        ]
        self.kms.rotate()
        self.allowed.add("journal.txt")
        self.argv = ["rewrap", "msgs", "--state", "journal.txt"]

    def check_outputs(self, *, finished: bool) -> list[str]:
        if not finished:
            return []
        journal = self.root / "journal.txt"
        done = set(journal.read_text().splitlines()) if journal.exists() else set()
        missing = [p.name for p in self.sealed if str(p.resolve()) not in done]
        return [f"not done after a finished run: {missing[:5]}"] if missing else []


class Reencrypt(Rewrap):
    count = 60

    def __init__(self, root: Path) -> None:
        self.new_part_written = False
        super().__init__(root)
        (root / "new.key").write_bytes(os.urandom(32))
        self.allowed.add("new.key")
        self.new_part_written = True
        self.argv = ["reencrypt", "msgs", "--cluster-secret", "new.key"]
        self.argv += ["--previous-cluster-secret", "cluster.key", "--state", "journal.txt"]

    def cluster(self) -> ClusterSecret:
        if not self.new_part_written:
            return ClusterSecret.from_file(self.part)
        return ClusterSecret.from_file(self.root / "new.key", previous=[self.part])


class KeystoreRewrap(World):
    versions = 16

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.store = FileKeyStore(root / "keys")
        env = Envelope(self.kms, keystore=self.store)
        for i in range(self.versions):
            version = env.store_new_key("svc/dek", CONTEXT)
            rel = f"msgs/m{i:03d}.env"
            (root / "msgs").mkdir(exist_ok=True)
            plain = self.plaintext(4096)
            (root / rel).write_bytes(env.encrypt(plain, CONTEXT, key_ref=f"svc/dek@{version}"))
            self.originals[root / rel] = plain
            self.allowed.add(rel)
        self.kms.rotate()
        self.argv = ["keystore", "rewrap", "svc/dek", "--all", "--keystore", "keys"]

    def envelope(self) -> Envelope:
        kms = LocalKms.open(self.root / "keyring.json")
        return Envelope(kms, keystore=FileKeyStore(self.root / "keys"))

    def is_allowed(self, rel: str) -> bool:
        name = rel.removeprefix("keys/svc/dek/")
        if name != rel and name.startswith("v") and len(name.removesuffix(".lock")) == 9:
            return name[1:9].isdigit()
        return rel in self.allowed

    def complete_output(self, target: str, data: bytes) -> bool:
        """A key-store version is complete if it holds the same data key as the version
        it replaces (a rewrap changes the wrapping, never the key)."""
        name = target.removeprefix("keys/svc/dek/")
        if name == target or not name.startswith("v"):
            return super().complete_output(target, data)
        version = int(name[1:])
        keys = self.envelope()._keys  # the key store's own unwrap, as decryption uses it
        current = keys.unwrap_stored(self.store.get("svc/dek", version))
        try:
            candidate = keys.unwrap_stored(StoredKey("svc/dek", version, data, ""))
        except Exception:
            return False
        return candidate == current


class KeystorePut(KeystoreRewrap):
    versions = 3

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.argv = ["keystore", "put", "svc/dek", "--keystore", "keys", "-c", "service=crash"]

    def check_outputs(self, *, finished: bool) -> list[str]:
        have = FileKeyStore(self.root / "keys").versions("svc/dek")
        if have != list(range(1, len(have) + 1)):
            return [f"versions are not 1..n: {have}"]
        if finished and len(have) <= self.versions:
            return ["no new version after a finished run"]
        env = self.envelope()
        for version in have:
            try:
                blob = env.encrypt(b"x", CONTEXT, key_ref=f"svc/dek@{version}")
                env.decrypt(blob, CONTEXT)
            except Exception as exc:
                return [f"stored version {version} is unusable: {exc!r}"]
        return []


class KeyringRotate(World):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        env = self.envelope()
        for i in range(10):
            self.seal(f"msgs/m{i:03d}.env", 1024, env)
        self.before = LocalKms.open(root / "keyring.json").current_version
        self.argv = ["keyring", "rotate"]

    def check_outputs(self, *, finished: bool) -> list[str]:
        now = LocalKms.open(self.root / "keyring.json").current_version
        if finished and now <= self.before:
            return ["no new KEK version after a finished run"]
        return []


class InitPublish(World):
    """``envelope init``: the visible names show no set or a whole set, never a mix."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        env = self.envelope()
        self.out = root / "out"
        self.out.mkdir()
        self.expect: dict[str, bytes] = {}
        secrets_cfg = []
        for name, size in (("database", 2048), ("api", 512), ("blob", 8 * 1024 * 1024)):
            sealed = self.seal(f"sealed/{name}.enc", size, env)
            self.expect[f"{name}.txt"] = self.originals[sealed]
            secrets_cfg.append(
                {
                    "name": name,
                    "source": {"file": str(sealed)},
                    "target": f"{name}.txt",
                    "context": CONTEXT,
                }
            )
        config = {
            "version": 1,
            "kms": {"kind": "local", "keyring": str(root / "keyring.json")},
            "cluster_secret": {"file": str(self.part)},
            "output": {"directory": str(self.out), "mode": "0400"},
            "secrets": secrets_cfg,
            "timeout": 30,
        }
        (root / "init.json").write_text(json.dumps(config))
        self.allowed.add("init.json")
        self.argv = ["init", "--config", "init.json", "--allow-disk", "--log-format", "json"]

    def skip_dir(self, rel: Path) -> bool:
        return rel.parts[:1] == ("out",)  # checked through the names an app reads

    def visible(self) -> dict[str, bytes]:
        out = {}
        for entry in self.out.iterdir():
            if not entry.name.startswith(".."):
                with contextlib.suppress(FileNotFoundError):  # dangling: not visible
                    out[entry.name] = entry.read_bytes()
        return out

    def check_outputs(self, *, finished: bool) -> list[str]:
        seen = self.visible()
        if seen == self.expect or (seen == {} and not finished):
            return []
        return [f"a partial set is visible: {sorted(seen)} ({[len(v) for v in seen.values()]})"]

    def stale_hidden(self) -> int:
        current = os.readlink(self.out / "..data") if (self.out / "..data").is_symlink() else ""
        names = [e.name for e in self.out.iterdir() if e.name.startswith("..")]
        return super().stale_hidden() + sum(1 for n in names if n not in ("..data", current))


SCENARIOS: dict[str, Callable[[Path], World]] = {
    "encrypt": Encrypt,
    "decrypt": Decrypt,
    "decrypt-replace": DecryptReplace,
    "rewrap-dir": Rewrap,
    "reencrypt-dir": Reencrypt,
    "keystore-put": KeystorePut,
    "keystore-rewrap": KeystoreRewrap,
    "keyring-rotate": KeyringRotate,
    "init-publish": InitPublish,
}
