"""Downloads against a real HTTP server on 127.0.0.1 that honours Range requests and misbehaves
on demand (drops the connection midway, answers 404/500, serves corrupted bytes)."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from upstream_files import (
    MPI3D_TEST_SIZES,
    decode_index,
    dsprites_arrays,
    mpi3d_arrays,
    shapes3d_arrays,
    write_h5,
    write_npz,
)

from lambdabeta.download import (
    Checksum,
    DownloadError,
    IntegrityError,
    fetch,
    fetch_source,
    file_checksum,
    local_path_hint,
    use_local_file,
)
from lambdabeta.loader import load_prepared
from lambdabeta.prepare import prepare_source

FAST = {"retry_wait": 0.0, "timeout": 5.0, "progress": False}


@dataclass
class Behaviour:
    """What the server serves, how it misbehaves, and the requests it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)  # path -> error status to answer
    drop_first: set[str] = field(default_factory=set)  # close after half the body, first time
    corrupt: set[str] = field(default_factory=set)  # flip the bits of the first byte
    ignore_range: set[str] = field(default_factory=set)  # answer 200 with the whole file
    down_after_drop: set[str] = field(default_factory=set)  # answer 503 once dropped
    html: dict[str, str] = field(default_factory=dict)  # path -> Content-Type of a 200 error page
    drop_every: dict[str, int] = field(default_factory=dict)  # close after this many body bytes
    trickle: dict[str, tuple[int, float]] = field(default_factory=dict)  # (bytes, seconds) a write
    no_length: set[str] = field(default_factory=set)  # send no Content-Length
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    dropped: set[str] = field(default_factory=set)


ERROR_PAGE = b"<!DOCTYPE html>\n<html><body><h1>Quota exceeded</h1>" + b"x" * 2000 + b"</html>"


class Handler(http.server.BaseHTTPRequestHandler):
    behaviour: Behaviour

    def do_GET(self):
        behaviour = self.behaviour
        range_header = self.headers.get("Range")
        behaviour.requests.append((self.path, range_header))
        if self.path in behaviour.status:
            self.send_error(behaviour.status[self.path])
            return
        if self.path in behaviour.down_after_drop and self.path in behaviour.dropped:
            self.send_error(503)
            return
        if self.path in behaviour.html:  # an error page served as 200, whatever was asked
            self.send_response(200)
            self.send_header("Content-Type", behaviour.html[self.path])
            self.send_header("Content-Length", str(len(ERROR_PAGE)))
            self.end_headers()
            self.wfile.write(ERROR_PAGE)
            return
        if self.path not in behaviour.files:
            self.send_error(404)
            return
        data = behaviour.files[self.path]
        if self.path in behaviour.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        if range_header and self.path not in behaviour.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        if self.path not in behaviour.no_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            if self.path in behaviour.drop_first and self.path not in behaviour.dropped:
                behaviour.dropped.add(self.path)
                self.wfile.write(body[: len(body) // 2])
            elif self.path in behaviour.drop_every:
                self.wfile.write(body[: behaviour.drop_every[self.path]])
            elif self.path in behaviour.trickle:
                step, pause = behaviour.trickle[self.path]
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    self.wfile.flush()
                    time.sleep(pause)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up
            pass
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """(base URL, Behaviour) of a threaded HTTP server on an ephemeral port."""
    behaviour = Behaviour()
    handler = type("BoundHandler", (Handler,), {"behaviour": behaviour})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", behaviour
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def payload():
    """A small file (random bytes) and its checksums."""
    data = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    return (
        data,
        "md5:" + hashlib.md5(data).hexdigest(),
        "sha256:" + hashlib.sha256(data).hexdigest(),
    )


def refused_url() -> str:
    """A URL on a port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def test_clean_download(server, payload, tmp_path):
    base, behaviour = server
    data, md5, sha256 = payload
    behaviour.files["/file.bin"] = data
    dest = tmp_path / "sub" / "file.bin"
    assert (
        fetch([base + "/file.bin"], dest, sha256, size=len(data), chunk_size=4096, **FAST) == dest
    )
    assert dest.read_bytes() == data
    assert not (tmp_path / "sub" / "file.bin.part").exists()
    assert behaviour.requests == [("/file.bin", None)]
    # already there and verified: returned without a request
    fetch([base + "/file.bin"], dest, md5, **FAST)
    assert len(behaviour.requests) == 1


def test_dropped_connection_resumes_with_range(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    behaviour.drop_first.add("/file.bin")
    dest = tmp_path / "file.bin"
    fetch([base + "/file.bin"], dest, md5, chunk_size=1024, **FAST)
    assert dest.read_bytes() == data
    assert len(behaviour.requests) == 2
    assert behaviour.requests[0] == ("/file.bin", None)
    assert behaviour.requests[1] == ("/file.bin", f"bytes={len(data) // 2}-")


def test_partial_file_from_an_earlier_run_is_resumed(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    dest = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(data[:1000])
    fetch([base + "/file.bin"], dest, md5, **FAST)
    assert dest.read_bytes() == data
    assert behaviour.requests == [("/file.bin", "bytes=1000-")]


def test_complete_partial_file_is_verified_after_416(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    (tmp_path / "file.bin.part").write_bytes(data)  # killed after the last byte, before rename
    fetch([base + "/file.bin"], tmp_path / "file.bin", md5, **FAST)
    assert (tmp_path / "file.bin").read_bytes() == data
    assert behaviour.requests == [("/file.bin", f"bytes={len(data)}-")]


def test_whole_but_corrupt_partial_file_is_deleted_and_downloaded_afresh(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    (tmp_path / "file.bin.part").write_bytes(bytes([data[0] ^ 0xFF]) + data[1:])
    fetch([base + "/file.bin"], tmp_path / "file.bin", md5, **FAST)
    assert (tmp_path / "file.bin").read_bytes() == data
    assert behaviour.requests == [("/file.bin", f"bytes={len(data)}-"), ("/file.bin", None)]


def test_server_ignoring_range_restarts_from_scratch(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    behaviour.ignore_range.add("/file.bin")
    (tmp_path / "file.bin.part").write_bytes(b"garbage from some other file")
    fetch([base + "/file.bin"], tmp_path / "file.bin", md5, **FAST)
    assert (tmp_path / "file.bin").read_bytes() == data
    assert behaviour.requests[0][1] is not None  # it did ask for a range


def test_corrupt_file_fails_with_both_checksums(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    behaviour.corrupt.add("/file.bin")
    corrupt_md5 = hashlib.md5(bytes([data[0] ^ 0xFF]) + data[1:]).hexdigest()
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError) as error:
        fetch([base + "/file.bin"], dest, md5, **FAST)
    message = str(error.value)
    assert base + "/file.bin" in message
    assert f"checksum mismatch: expected {md5}, got md5:{corrupt_md5}" in message
    assert f"(expected {md5})" in message
    assert not dest.exists()
    assert not (tmp_path / "file.bin.part").exists()


def test_size_mismatch_is_reported(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    with pytest.raises(DownloadError, match=f"size mismatch: expected 5 bytes, got {len(data)}"):
        fetch([base + "/file.bin"], tmp_path / "file.bin", md5, size=5, **FAST)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dead", ["refused", "404", "500"])
def test_dead_first_mirror_then_good_second(server, payload, tmp_path, dead):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/good.bin"] = data
    behaviour.status["/500.bin"] = 500
    first = refused_url() if dead == "refused" else f"{base}/{dead}.bin"
    fetch([first, base + "/good.bin"], tmp_path / "file.bin", md5, **FAST)
    assert (tmp_path / "file.bin").read_bytes() == data
    # an HTTP error status is not retried on the same mirror
    assert [path for path, _ in behaviour.requests].count(f"/{dead}.bin") == (dead != "refused")


def test_all_mirrors_failing_names_every_url_and_reason(server, payload, tmp_path):
    base, behaviour = server
    _, md5, _ = payload
    behaviour.status["/broken.bin"] = 500
    urls = [refused_url(), base + "/missing.bin", base + "/broken.bin"]
    with pytest.raises(DownloadError) as error:
        fetch(urls, tmp_path / "file.bin", md5, attempts_per_url=2, **FAST)
    message = str(error.value)
    assert f"(expected {md5})" in message
    assert re.search(
        re.escape(urls[0]) + r": connection error: .*refused.*after 2 attempts", message
    )
    assert f"{urls[1]}: HTTP 404" in message
    assert f"{urls[2]}: HTTP 500" in message
    assert not (tmp_path / "file.bin").exists()


def test_drops_on_every_mirror_keep_the_partial_file_for_a_later_run(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    behaviour.drop_first.add("/file.bin")
    behaviour.down_after_drop.add("/file.bin")  # a drop that gained bytes is retried at once
    with pytest.raises(
        DownloadError,
        match=r"incomplete, resumable: the connection closed after .* bytes; HTTP 503 .*"
        r"\(after 3 attempts\)[\s\S]*running again resumes",
    ):
        fetch([base + "/file.bin"], tmp_path / "file.bin", md5, attempts_per_url=1, **FAST)
    part = tmp_path / "file.bin.part"
    assert part.stat().st_size == len(data) // 2
    behaviour.down_after_drop.clear()
    fetch([base + "/file.bin"], tmp_path / "file.bin", md5, **FAST)  # a later invocation
    assert (tmp_path / "file.bin").read_bytes() == data
    assert behaviour.requests[-1] == ("/file.bin", f"bytes={len(data) // 2}-")


@pytest.mark.parametrize("partial", [0, 1500])
@pytest.mark.parametrize("page_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_error_page_mirror_then_flaky_mirror_finish_in_one_run(
    server, payload, tmp_path, partial, page_type
):
    """An error page answered with 200 first, then a mirror dropping every 500 bytes: one run
    finishes and extends a partial file from an earlier run instead of replacing it."""
    base, behaviour = server
    data = payload[0][:6000]
    md5 = "md5:" + hashlib.md5(data).hexdigest()
    behaviour.html["/error.bin"] = page_type
    behaviour.files["/flaky.bin"] = data
    behaviour.drop_every["/flaky.bin"] = 500
    part = tmp_path / "file.bin.part"
    if partial:
        part.write_bytes(data[:partial])
    urls = [base + "/error.bin", base + "/flaky.bin"]
    fetch(urls, tmp_path / "file.bin", md5, **FAST)  # no size given, like mpi3d_real
    assert (tmp_path / "file.bin").read_bytes() == data
    assert not part.exists()
    # the error page was asked once and never written; the partial file only ever grew
    assert behaviour.requests[0] == ("/error.bin", f"bytes={partial}-" if partial else None)
    assert [path for path, _ in behaviour.requests].count("/error.bin") == 1
    ranges = [r for path, r in behaviour.requests if path == "/flaky.bin"]
    assert ranges == [f"bytes={start}-" if start else None for start in range(partial, 6000, 500)]


def test_trickling_server_times_out_on_the_minimum_rate(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/slow.bin"] = data
    behaviour.trickle["/slow.bin"] = (10, 0.02)  # 500 bytes/s, forever under a 60 s timeout
    url = base + "/slow.bin"
    dest = tmp_path / "file.bin"
    part = tmp_path / "file.bin.part"
    slow = {"min_rate_bytes": 5000, "min_rate_seconds": 0.5, "attempts_per_url": 2}
    began = time.monotonic()
    with pytest.raises(DownloadError) as error:
        fetch([url], dest, md5, **slow, **{**FAST, "timeout": 60.0})
    assert time.monotonic() - began < 3.0
    message = str(error.value)
    assert f"could not download {dest} (expected {md5})" in message
    assert re.search(
        re.escape(url) + r": incomplete, resumable: stalled at \d+ bytes, \d+ bytes in 0\.\d s "
        r"\(the minimum is 5000 bytes in 0\.5 s\) \(after 2 attempts\)",
        message,
    )
    kept = part.stat().st_size
    assert 0 < kept < len(data) and part.read_bytes() == data[:kept]
    assert f"{kept} bytes are kept in {part}; running again resumes there" in message
    assert len(behaviour.requests) == 2  # a stalled attempt is a failed one, however many bytes
    del behaviour.trickle["/slow.bin"]
    fetch([url], dest, md5, **slow, **FAST)
    assert dest.read_bytes() == data
    assert behaviour.requests[-1] == ("/slow.bin", f"bytes={kept}-")


def test_body_without_length_cut_short_is_incomplete_and_resumed(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    behaviour.no_length.add("/file.bin")
    behaviour.drop_first.add("/file.bin")
    behaviour.down_after_drop.add("/file.bin")
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError) as error:
        fetch([base + "/file.bin"], dest, md5, size=len(data), **FAST)
    message = str(error.value)
    half = len(data) // 2
    assert f"incomplete, resumable: the connection closed after {half} of {len(data)} bytes" in (
        message
    )
    assert "checksum" not in message.replace(f"expected {md5}", "")
    assert (tmp_path / "file.bin.part").read_bytes() == data[:half]
    behaviour.down_after_drop.clear()
    fetch([base + "/file.bin"], dest, md5, size=len(data), **FAST)  # the next run
    assert dest.read_bytes() == data
    assert behaviour.requests[-1] == ("/file.bin", f"bytes={half}-")


@pytest.mark.parametrize("second", ["corrupt", "drops", "good"])
def test_whole_file_answer_from_a_second_mirror_never_overwrites_the_partial(
    server, payload, tmp_path, second
):
    """Mirror 1 leaves half the file and goes down; mirror 2 answers range requests with the
    whole file (200). Its download from the first byte replaces the partial file only if it
    gets further; wrong bytes from it are deleted, never the partial file."""
    base, behaviour = server
    data, md5, _ = payload
    half = len(data) // 2
    behaviour.files["/flaky.bin"] = behaviour.files["/whole.bin"] = data
    behaviour.drop_first.add("/flaky.bin")
    behaviour.down_after_drop.add("/flaky.bin")
    behaviour.ignore_range.add("/whole.bin")
    if second == "corrupt":
        behaviour.corrupt.add("/whole.bin")
    elif second == "drops":
        behaviour.drop_every["/whole.bin"] = half // 2
    urls = [base + "/flaky.bin", base + "/whole.bin"]
    dest, part = tmp_path / "file.bin", tmp_path / "file.bin.part"
    restart = tmp_path / "file.bin.part.restart"
    whole_ranges = [f"bytes={half}-"] * 2  # asked to resume in two passes, then from byte 0
    if second == "good":
        fetch(urls, dest, md5, **FAST)
        assert dest.read_bytes() == data
        assert not part.exists() and not restart.exists()
        assert [r for p, r in behaviour.requests if p == "/whole.bin"] == [*whole_ranges, None]
        return
    with pytest.raises(DownloadError) as error:
        fetch(urls, dest, md5, **FAST)
    message = str(error.value)
    assert part.read_bytes() == data[:half]
    assert not restart.exists() and not dest.exists()
    assert f"cannot resume {part}: answered HTTP 200 (the whole file) to a request for bytes" in (
        message
    )
    if second == "corrupt":
        assert f"checksum mismatch: expected {md5}, got md5:" in message
        assert f"deleted the {len(data)} bytes of {restart}" in message
    else:
        assert f"closed after {half // 2} of {len(data)} bytes" in message
    assert f"{half} bytes are kept in {part}" in message
    behaviour.down_after_drop.clear()
    fetch(urls, dest, md5, **FAST)  # the next run resumes the partial file on mirror 1
    assert dest.read_bytes() == data
    assert behaviour.requests[-1] == ("/flaky.bin", f"bytes={half}-")


@pytest.mark.parametrize("restart_size", [500, 5000])
def test_restart_left_by_a_killed_job_is_kept_only_if_longer(
    server, payload, tmp_path, restart_size
):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    (tmp_path / "file.bin.part").write_bytes(data[:1000])
    (tmp_path / "file.bin.part.restart").write_bytes(data[:restart_size])
    fetch([base + "/file.bin"], tmp_path / "file.bin", md5, **FAST)
    assert (tmp_path / "file.bin").read_bytes() == data
    assert behaviour.requests == [("/file.bin", f"bytes={max(1000, restart_size)}-")]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file.bin"]


def test_mirror_announcing_another_size_never_touches_the_partial(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/other.bin"] = data + b"trailer"
    behaviour.files["/file.bin"] = data
    part = tmp_path / "file.bin.part"
    part.write_bytes(data[:1000])
    urls = [base + "/other.bin", base + "/file.bin"]
    fetch(urls, tmp_path / "file.bin", md5, size=len(data), **FAST)
    assert (tmp_path / "file.bin").read_bytes() == data
    assert behaviour.requests == [("/other.bin", "bytes=1000-"), ("/file.bin", "bytes=1000-")]


def test_checksum_spec_is_validated():
    assert Checksum.parse("MD5:" + "A" * 32) == Checksum("md5", "a" * 32)
    for spec, message in [
        ("d41d8cd98f00b204e9800998ecf8427e", "must look like"),
        ("crc32:1234abcd", "unsupported algorithm 'crc32'"),
        ("md5:xyz", "a md5 digest is 32 hex digits"),
        ("sha256:" + "0" * 32, "a sha256 digest is 64 hex digits"),
    ]:
        with pytest.raises(ValueError, match=message):
            Checksum.parse(spec)
    with pytest.raises(ValueError, match="not an http"):
        fetch(["ftp://example.org/x"], "x", "md5:" + "0" * 32)


def test_file_checksum_streams(tmp_path, payload):
    data, md5, sha256 = payload
    path = tmp_path / "f"
    path.write_bytes(data)
    assert "md5:" + file_checksum(path, "md5") == md5
    assert "sha256:" + file_checksum(path, "sha256", chunk_size=1000) == sha256


def test_local_file_is_verified_and_linked(tmp_path, payload):
    data, md5, _ = payload
    local = tmp_path / "mine" / "file.bin"
    local.parent.mkdir()
    local.write_bytes(data)
    dest = tmp_path / "resources" / "file.bin"
    source = {
        "format": "mpi3d_npz",
        "file": "file.bin",
        "urls": ["http://unused.invalid/x"],
        "checksum": md5,
        "size": len(data),
        "local_path": str(local),
    }
    assert fetch_source(source, dest) == dest
    assert dest.is_symlink() and dest.readlink().is_absolute()
    assert dest.resolve() == local.resolve()
    assert dest.read_bytes() == data


def test_wrong_local_file_fails_clearly(tmp_path, payload):
    data, md5, _ = payload
    local = tmp_path / "file.bin"
    local.write_bytes(data[:-1] + b"x")
    actual = hashlib.md5(local.read_bytes()).hexdigest()
    dest = tmp_path / "out" / "file.bin"
    with pytest.raises(IntegrityError) as error:
        use_local_file(local, dest, md5)
    assert str(local) in str(error.value)
    assert f"expected {md5}, got md5:{actual}" in str(error.value)
    assert not dest.exists() and not dest.is_symlink()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        use_local_file(tmp_path / "nope.bin", dest, md5)


def test_fetch_source_downloads_when_no_local_path(server, payload, tmp_path):
    base, behaviour = server
    data, md5, _ = payload
    behaviour.files["/file.bin"] = data
    source = {
        "format": "mpi3d_npz",
        "file": "file.bin",
        "urls": [base + "/file.bin"],
        "checksum": md5,
        "local_path": None,
    }
    fetch_source(source, tmp_path / "file.bin", **FAST)
    assert (tmp_path / "file.bin").read_bytes() == data
    with pytest.raises(ValueError, match="missing key"):
        fetch_source({"file": "x"}, tmp_path / "x")


def test_failed_download_names_the_local_path_key(server, payload, tmp_path):
    base, behaviour = server
    _, md5, _ = payload
    behaviour.status["/gone.bin"] = 404
    source = {"format": "mpi3d_npz", "file": "gone.bin", "urls": [base + "/gone.bin"],
              "checksum": md5}  # fmt: skip
    with pytest.raises(DownloadError) as error:
        fetch_source(source, tmp_path / "gone.bin", dataset="mpi3d_real", **FAST)
    message = str(error.value)
    assert f"{base}/gone.bin: HTTP 404" in message  # the mirrors' failures come first
    assert message.endswith(local_path_hint("mpi3d_real", "gone.bin"))
    assert "set datasets.mpi3d_real.local_path in the config" in message
    assert not (tmp_path / "gone.bin").exists()


@pytest.mark.parametrize("fmt", ["dsprites_npz", "shapes3d_h5", "mpi3d_npz"])
def test_download_then_prepare_each_upstream_format(server, tmp_path, fmt):
    """Serve each tiny upstream-format file, fetch it through a flaky connection, prepare it."""
    base, behaviour = server
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    written = {
        "dsprites_npz": lambda: write_npz(upstream / "dsprites.npz", dsprites_arrays()),
        "shapes3d_h5": lambda: write_h5(upstream / "3dshapes.h5", shapes3d_arrays()),
        "mpi3d_npz": lambda: write_npz(
            upstream / "mpi3d_real.npz", mpi3d_arrays(), compressed=False
        ),
    }[fmt]()
    data = written.read_bytes()
    behaviour.files["/" + written.name] = data
    behaviour.drop_first.add("/" + written.name)
    source = {
        "format": fmt,
        "file": written.name,
        "urls": [base + "/" + written.name],
        "checksum": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "local_path": None,
    }
    if fmt == "mpi3d_npz":
        source["factor_sizes"] = list(MPI3D_TEST_SIZES)
    dest = fetch_source(source, tmp_path / "downloads" / written.name, **FAST)
    out = prepare_source(source, dest, tmp_path / "prepared", name=fmt)
    dataset = load_prepared(out)
    np.testing.assert_array_equal(decode_index(np.asarray(dataset.images)), np.arange(len(dataset)))
