#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (kept in the repo).

Run from anywhere: `python3 fuzz/make_seeds.py`. Seeds are small, hand-picked inputs and
files from testdata/ (Dockerfiles, .dockerignore files), tars made here with Python's tarfile,
manifests shaped like what registries serve, and the references of registry/tests/reference.rs.
Each seed is named by the sha1 of its content, as libFuzzer names corpus files, so running this
again adds nothing that is already there. Files the fuzzer added are not touched.
"""
import gzip
import hashlib
import io
import json
import os
import re
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- dockerfile
def dockerfiles():
    for root, _, files in os.walk(os.path.join(REPO, "testdata")):
        for name in files:
            if name == "Dockerfile" or name.endswith(".Dockerfile"):
                with open(os.path.join(root, name), "rb") as f:
                    yield f.read()
    yield from [
        "FROM scratch\nCOPY . /\n",
        "ARG BASE=busybox\nFROM ${BASE} AS b\nARG X=1\nRUN echo $X\nFROM b\nCOPY --from=b /a /b\n",
        "# syntax=docker/dockerfile:1\n# check=error=true\nFROM busybox\nRUN <<EOF\necho hi\nEOF\n"
        "COPY <<-EOT /x\n\tline\n\tEOT\n",
        "# escape=`\nFROM busybox\nRUN echo a `\n  b\nWORKDIR c:\\\\x\n",
        "FROM busybox AS base\nONBUILD RUN echo onbuild\nFROM base\nENV A=1 B=\"two words\"\n"
        "LABEL a=b \"c d\"=e\nEXPOSE 80/tcp 8000-8010/udp\nVOLUME [\"/data\"]\nUSER 1000:1000\n"
        "STOPSIGNAL SIGTERM\nSHELL [\"/bin/sh\",\"-c\"]\nHEALTHCHECK --interval=5s --retries=3 CMD true\n"
        "ENTRYPOINT [\"/bin/sh\"]\nCMD [\"-c\",\"echo\"]\n",
        "FROM busybox\nRUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked "
        "--mount=type=bind,source=a,target=/a,rw --mount=type=secret,id=s,env=TOKEN "
        "--mount=type=ssh --mount=type=tmpfs,target=/t,size=1m --network=none true\n",
        "FROM busybox\nCOPY --chown=1:1 --chmod=755 --link --parents --exclude=*.md a/ b c/\n"
        "ADD --checksum=sha256:" + "a" * 64 + " https://example.com/x.tgz /x\n"
        "ADD --keep-git-dir=true https://github.com/o/r.git#main /src\n",
        "ARG A=a\nFROM busybox\nARG A\nENV P=${A:-d} Q=${A:+s} R=${A#*a} S=${A%%a*} T=${A/a/b}\n"
        "RUN echo ${P?unset}\n",
        "ARG A=x\nARG A=$A$A$A$A\nARG A=$A$A$A$A\nFROM busybox\nARG A\nRUN echo $A\n",
        "FROM --platform=$BUILDPLATFORM busybox AS b\nARG TARGETARCH\nRUN echo $TARGETARCH\n"
        "FROM --platform=linux/arm64 b\n",
        "FROM busybox\nMAINTAINER me\nENV A 1\nLABEL version 1\n",
        "from busybox\nrun echo lower\ncopy [\"a b\", \"c\"]\n",
        "FROM a\nFROM b AS B\nFROM c AS c2\nCOPY --from=0 / /\nCOPY --from=B / /\nCOPY --from=c2 / /\n",
        "FROM busybox\nRUN echo \\\n# comment inside\n\n  continued\n",
    ]


# ---------------------------------------------------------------- shell_word
SHELL_WORDS = [
    (0, "$A"), (0, "${A}"), (0, "${SP:-default}"), (0, "${UNSET:-x y}"), (0, "${A:+set}"),
    (0, "${UNSET?must be set}"), (0, "${EMPTY:?}"), (0, "${GLOB#*.}"), (0, "${GLOB##*[}"),
    (0, "${PATHV%:*}"), (0, "${PATHV%%:*}"), (0, "${PATHV//:/ }"), (0, "${PATHV/\\/usr/X}"),
    (0, "'single $A'"), (0, "\"double $A ${SP}\""), (0, "a\\ b\\$A"), (0, "$SP$SP"),
    (0, "${A:-${SP:-${UNSET}}}"), (0, "${#A}"), (0, "${A:1:2}"), (0, "${!A}"), (0, "${"),
    (0, "\"unterminated"), (1, "`$A `${SP}"), (2, "\"keep quotes\" '$A'"), (4, "a\\b\\$A"),
    (8, "$UNSET ${UNSET:-x} ${UNSET?m}"), (16, "'no quotes' \"$A\""), (0, "$LONG$LONG$LONG$LONG"),
    (0, "${Q}"), (0, "\"${Q}\""), (0, "${A/#a/b}"), (0, "${A/%a/b}"), (0, "${GLOB/\\*/star}"),
]


# ---------------------------------------------------------------- dockerignore
def dockerignores():
    for root, _, files in os.walk(os.path.join(REPO, "testdata")):
        for name in files:
            if name.endswith(".dockerignore"):
                with open(os.path.join(root, name), "rb") as f:
                    yield f.read() + b"\0keep.md\nx.md\nignored-dir/a\ndata/labels.txt\ndata/x\n"
    yield from [
        "node_modules\n!node_modules/keep\n\0node_modules/keep/a\nnode_modules/x\n",
        "**\n!src/**\n!**/*.go\n\0src/a\nb/c.go\nd\n",
        "\ufeff# comment\n  *.pyc  \n\n/build/\n./dist\n../up\n\0a.pyc\nbuild/x\ndist\n",
        "[a-c]*\n[^x]?\n\\*literal\nfoo/**/bar\n**/*.tmp\n\0b1\nxy\n*literal\nfoo/a/b/bar\nq/r.tmp\n",
        "!\n", "!/\n", "[z-a]\n", "abc\\\n", "a\r\n!b\r\n\0a\nb\n",
        "*\n!*/\n!**/keep\n\0a/b/keep\na/b/drop\n",
        "dir\n!dir/sub\ndir/sub/x\n\0dir/sub/x\ndir/sub/y\ndir/z\n",
        ".git\n.dockerignore\nDockerfile\n\0.git/HEAD\nDockerfile\n",
    ]


# ---------------------------------------------------------------- unpack
def tar(entries, fmt=tarfile.GNU_FORMAT, pax=None):
    """entries: (name, kind, extra). A plain tar cut after its end-of-archive marker."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax or {}) as t:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.mode = extra.get("mode", 0o755 if kind == "dir" else 0o644)
            ti.uid = ti.gid = extra.get("uid", 0)
            data = None
            if kind == "file":
                data = extra.get("data", b"x")
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = extra["to"]
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = extra["to"]
            elif kind == "char":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = extra.get("dev", (0, 0))
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            if "pax" in extra:
                ti.pax_headers = extra["pax"]
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    end = len(raw.rstrip(b"\0"))
    end = (end + 511) // 512 * 512 + 1024
    return raw[:end]


def tars():
    f, d, s, h = "file", "dir", "symlink", "hardlink"
    yield tar([("a", d, {}), ("a/b", f, {"data": b"hello"}), ("a/c", s, {"to": "b"}),
               ("a/d", h, {"to": "a/b"})])
    yield tar([("./etc/", d, {}), ("./etc/passwd", f, {"data": b"root:x:0:0::/:/bin/sh\n"})])
    yield tar([("../escape", f, {})])
    yield tar([("/abs/file", f, {})])
    yield tar([("out/keep", f, {"data": b"pwned"})])
    yield tar([("outfile", f, {"data": b"pwned"})])
    yield tar([("abs/new", f, {})])
    yield tar([("in/x", f, {})])
    yield tar([("l", s, {"to": "/"}), ("l/tmp/x", f, {})])
    yield tar([("l", s, {"to": ".."}), ("l/x", f, {})])
    yield tar([("h", h, {"to": "outfile"})])
    yield tar([("h", h, {"to": "../sentinel/keep"})])
    yield tar([("h", h, {"to": "out/keep"}), ("h", f, {"data": b"pwned"})])
    yield tar([("dir/.wh.a", f, {}), ("dir/sub/.wh..wh..opq", f, {})])
    yield tar([(".wh.out", f, {}), (".wh.abs", f, {}), ("etc/.wh.passwd", f, {})])
    yield tar([("dir/.wh...", f, {})])
    yield tar([(".wh.../sentinel", f, {})])
    yield tar([("dir/new", f, {}), ("dir/.wh.new", f, {})])
    yield tar([("dev", d, {}), ("dev/null", "char", {"dev": (1, 3)}), ("dev/p", "fifo", {}),
               ("dev/wh", "char", {})])
    yield tar([("suid", f, {"mode": 0o4755, "uid": 1000})])
    yield tar([("long/" + "n" * 200 + "/f", f, {})], fmt=tarfile.GNU_FORMAT)
    yield tar([("p" * 150 + "/x", f, {"pax": {"SCHILY.xattr.user.k": "v"}})],
              fmt=tarfile.PAX_FORMAT)
    yield tar([("x", f, {"pax": {"path": "../pax-escape"}})], fmt=tarfile.PAX_FORMAT)
    yield tar([("x", s, {"to": "y", "pax": {"linkpath": "/etc/shadow"}})],
              fmt=tarfile.PAX_FORMAT)
    yield tar([("dir", f, {}), ("dir/x", f, {})])
    yield tar([("dir", s, {"to": "in"}), ("dir/x", f, {})])
    yield tar([(".", d, {"mode": 0o700}), ("in", d, {})])
    yield gzip.compress(tar([("gz/a", f, {"data": b"gz"})]), mtime=0)
    yield gzip.compress(tar([("m1", f, {})]), mtime=0) + gzip.compress(tar([("m2", f, {})]), mtime=0)
    yield b"\x28\xb5\x2f\xfd" + b"\0" * 16
    yield b"BZh9" + b"\0" * 16
    yield b"\xfd7zXZ\0" + b"\0" * 16


# ---------------------------------------------------------------- manifest
D = "sha256:" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
D2 = "sha256:" + "a" * 64


def manifests():
    desc = lambda mt, size=123, **kw: dict({"mediaType": mt, "digest": D, "size": size}, **kw)
    yield {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": desc("application/vnd.oci.image.config.v1+json", 1469),
           "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", 2152262),
                      desc("application/vnd.oci.image.layer.v1.tar+zstd", 10),
                      desc("application/vnd.oci.image.layer.v1.tar", 20)],
           "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}}
    yield {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "config": desc("application/vnd.docker.container.image.v1+json", 1457),
           "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", 2591575)]}
    yield {"schemaVersion": 2, "config": desc("x", 18446744073709551615), "layers": []}
    yield {"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:../../../../tmp/x",
                                          "size": 1}, "layers": []}
    plat = lambda os_, arch, var=None: dict({"os": os_, "architecture": arch},
                                            **({"variant": var} if var else {}))
    yield {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [
               desc("application/vnd.oci.image.manifest.v1+json", platform=plat("linux", "amd64")),
               desc("application/vnd.oci.image.manifest.v1+json", platform=plat("linux", "arm64", "v8")),
               desc("application/vnd.oci.image.manifest.v1+json", platform=plat("linux", "arm", "v7")),
               desc("application/vnd.oci.image.manifest.v1+json", platform=plat("windows", "amd64")),
               desc("application/vnd.oci.image.manifest.v1+json", platform=plat("unknown", "unknown"),
                    annotations={"vnd.docker.reference.type": "attestation-manifest",
                                 "vnd.docker.reference.digest": D2})]}
    yield {"schemaVersion": 2,
           "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
           "manifests": [desc("application/vnd.docker.distribution.manifest.v2+json",
                              platform=plat("linux", "x86_64")),
                         desc("application/vnd.docker.distribution.manifest.v2+json",
                              platform=plat("linux", "aarch64")),
                         desc("application/vnd.docker.distribution.manifest.v2+json",
                              platform=plat("linux", "armhf"))]}
    yield {"schemaVersion": 2, "manifests": [{"mediaType": "x", "digest": D, "size": 1,
                                              "platform": {"os": "linux", "architecture": "arm",
                                                           "variant": "5"}}]}
    # Image configs: busybox-like, Go's nulls, and every field.
    yield {"architecture": "amd64", "os": "linux", "created": "2024-09-26T21:31:42Z",
           "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                      "Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": [D]},
           "history": [{"created": "2024-09-26T21:31:42Z",
                        "created_by": "BusyBox 1.37.0 (glibc), Debian 13"}]}
    yield {"architecture": "amd64", "os": "linux",
           "config": {"Env": None, "OnBuild": None, "Labels": None, "Volumes": None, "Cmd": None,
                      "Entrypoint": [], "WorkingDir": ""},
           "rootfs": {"type": "layers", "diff_ids": None}, "history": None}
    yield {"architecture": "arm64", "variant": "v8", "os": "linux", "author": "me",
           "config": {"User": "1000:1000", "ExposedPorts": {"80/tcp": {}}, "Env": ["A=1", "B"],
                      "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo"], "Volumes": {"/data": {}},
                      "WorkingDir": "/app", "Labels": {"a": "b"}, "StopSignal": "SIGTERM",
                      "ArgsEscaped": True,
                      "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000,
                                      "Timeout": 1, "StartPeriod": 2, "StartInterval": 3,
                                      "Retries": 3},
                      "OnBuild": ["RUN echo"], "Shell": ["/bin/bash", "-c"]},
           "rootfs": {"type": "layers", "diff_ids": [D, D2]},
           "history": [{"created_by": "RUN x", "empty_layer": True, "comment": "c",
                        "author": "a"}]}


# ---------------------------------------------------------------- reference
def references():
    path = os.path.join(REPO, "registry", "tests", "reference.rs")
    with open(path) as f:
        src = f.read()
    hex64 = "f" * 64

    def expand(s):
        s = s.replace("{H64}", hex64).replace("{H128}", "f" * 128)
        s = s.replace("{A/127}", "a/" * 127).replace("{EMPTY}", "")
        for n in (255, 256):
            s = s.replace("{A%d}" % n, "a" * n)
        return s

    out = set()
    for m in re.finditer(r"^\s*(\S+) => ", src, re.M):
        out.add(expand(m.group(1)))
    for m in re.finditer(r'let (?:valid|invalid) = "([^"]*)";', src, re.S):
        out.update(m.group(1).replace("\\\n", " ").split())
    out.update([
        "busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:1.36",
        "index.docker.io/library/busybox", "localhost/app", "localhost:5000/a/b:c",
        "ghcr.io/o/app@" + D, "ghcr.io/o/app:1.2@" + D, "registry.example.com/team/ml-app:1.0",
        "[::1]:5000/x", "a@sha512:" + "f" * 128, "a@sha384:" + "f" * 96, "a@md5:" + "f" * 32,
        "UPPER/x", "x:" + "t" * 128, "x:" + "t" * 129, "docker.io/a.b/c", "docker.io/localhost/x",
        "docker.io/library/" + hex64,
    ])
    return sorted(out)


# ---------------------------------------------------------------- mount_manifest
def mount_manifests():
    chunk = lambda mt, size, tar_size, entries: {
        "mediaType": mt, "digest": D, "size": size, "diffId": D2, "tarSize": tar_size,
        "entries": entries}
    base = {"mediaType": "application/vnd.pallet.cache-mount.v1+json", "version": 1,
            "root": {"mode": 493, "uid": 0, "gid": 0},
            "chunks": [chunk("application/vnd.oci.image.layer.v1.tar+gzip", 10485760, 10496000, 812),
                       chunk("application/vnd.oci.image.layer.v1.tar+zstd", 5243000, 5244928, 3),
                       chunk("application/vnd.oci.image.layer.v1.tar+gzip", 40111, 1310720, 2550)],
            "entries": 3365, "contentSize": 15000000}
    yield base
    yield dict(base, chunks=[dict(chunk("application/vnd.oci.image.layer.v1.tar", 2048, 2048, 1),
                                  diffId=D)])
    yield dict(base, chunks=[])
    yield dict(base, version=2)
    yield dict(base, mediaType="application/vnd.oci.image.manifest.v1+json")
    yield dict(base, chunks=[chunk("text/plain", 1, 1024, 1)])


def main():
    for df in dockerfiles():
        put("dockerfile", df)
    for opts, word in SHELL_WORDS:
        put("shell_word", bytes([opts]) + word.encode())
    for ig in dockerignores():
        put("dockerignore", ig)
    for t in tars():
        put("unpack", t)
        put("add_unpack", t)
    for m in manifests():
        put("manifest", json.dumps(m, indent=2))
    for r in references():
        put("reference", r)
    for m in mount_manifests():
        put("mount_manifest", json.dumps(m, separators=(",", ":")))
    for t in sorted(os.listdir(CORPUS)):
        d = os.path.join(CORPUS, t)
        n = len(os.listdir(d))
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        print(f"{t}: {n} seeds, {size} bytes")


if __name__ == "__main__":
    main()
