"""The client subcommands of ``t2m``: login, upload, generate, jobs, download, files.

Each command returns its exit code; failures raise :class:`CliError`, which
``run`` prints as one line on stderr (``t2m <command>: <reason>``).  Tables by
default, ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import mimetypes
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from t2m.client import config
from t2m.client.errors import CliError
from t2m.client.http import CHUNK, Api
from t2m.client.output import print_fields, print_json, print_table
from t2m.client.progress import ProgressBar, human_bytes
from t2m.client.sse import follow_job

Handler = Callable[[argparse.Namespace], int]


def server_of(args: argparse.Namespace) -> str:
    return config.normalise_server(
        args.server
        or os.environ.get("T2M_SERVER")
        or config.saved_default_server()
        or config.DEFAULT_SERVER
    )


def run(handler: Handler) -> Handler:
    """Wrap a command: a CliError or Ctrl-C becomes one line on stderr."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CliError as exc:
            print(f"t2m {args.command}: {exc.message}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print(f"t2m {args.command}: interrupted", file=sys.stderr)
            return 130

    return wrapped


# -- login / logout -----------------------------------------------------------


def cmd_login(args: argparse.Namespace) -> int:
    api = Api(server_of(args))
    username = args.username or _ask("Username: ")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise CliError("a username and a password are needed", 2)
    login = api.sign_in(username, password)
    if args.json:
        print_json({"server": api.server, "username": login.username})
    else:
        print(f"Signed in to {api.server} as {login.username}")
    return 0


def _ask(prompt: str) -> str:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise CliError("no username given (use --username)", 2)
    return line.strip()


def cmd_logout(args: argparse.Namespace) -> int:
    api = Api(server_of(args))
    if api.login is None:
        raise CliError(f"not signed in to {api.server}")
    with contextlib.suppress(CliError):  # signed out locally even if the server is away
        api.send(
            "POST", "/api/v1/auth/logout", json_body={"refresh_token": api.login.refresh_token}
        )
    config.forget_login(api.server)
    print(f"Signed out of {api.server}")
    return 0


# -- upload -------------------------------------------------------------------


def _multipart(path: Path, fields: dict[str, str], boundary: str) -> tuple[bytes, bytes, int]:
    """The bytes before and after the file's content, and the content size."""
    head = bytearray()
    for name, value in fields.items():
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    filename = (
        path.name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")
    )
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    head += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return bytes(head), tail, path.stat().st_size


def _upload_one(api: Api, path: Path, fields: dict[str, str]) -> dict[str, Any]:
    if not path.is_file():
        raise CliError("no such file")
    boundary = "t2m-" + secrets.token_hex(16)
    head, tail, size = _multipart(path, fields, boundary)
    bar = ProgressBar(path.name, size)

    def body() -> Iterator[bytes]:
        yield head
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                bar.advance(len(chunk))
                yield chunk
        yield tail

    api.access_token()  # refreshed now if due: a streamed body is sent once
    try:
        response = api.send(
            "POST",
            "/api/v1/files/upload",
            body=body(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + size + len(tail)),
            },
            timeout_s=300,
        )
        data: dict[str, Any] = response.data()
    except CliError as exc:
        bar.close(f"failed: {exc.message}")
        raise
    bar.close(f"done, {human_bytes(size)}")
    return data


def cmd_upload(args: argparse.Namespace) -> int:
    api = Api(server_of(args))
    fields = {
        name: value
        for name, value in (
            ("title", args.title),
            ("description", args.description),
            ("tags", " ".join(args.tag or [])),
        )
        if value
    }
    results: list[dict[str, Any]] = []
    for name in args.files:
        path = Path(name)
        try:
            uploaded = _upload_one(api, path, fields)
            results.append({"path": name, "ok": True, "file": uploaded})
        except CliError as exc:
            # Reported per file, and never retried behind the user's back.
            print(f"t2m upload: {name}: {exc.message}", file=sys.stderr)
            results.append({"path": name, "ok": False, "error": exc.message})
    if args.json:
        print_json(results)
    else:
        print_table(
            ("FILE", "ID", "TYPE", "SIZE", "RESULT"),
            [
                (
                    r["path"],
                    r["file"]["id"],
                    r["file"]["file_type"],
                    human_bytes(r["file"]["size"]),
                    "uploaded",
                )
                if r["ok"]
                else (r["path"], None, None, None, f"failed: {r['error']}")
                for r in results
            ],
        )
    failed = sum(not r["ok"] for r in results)
    if failed:
        raise CliError(f"{failed} of {len(results)} files failed")
    return 0


# -- generate -----------------------------------------------------------------


def cmd_generate(args: argparse.Namespace) -> int:
    api = Api(server_of(args))
    try:
        script = Path(args.script).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"cannot read {args.script}: {getattr(exc, 'strerror', None) or exc}", 2
        ) from exc
    body: dict[str, Any] = {"script": script, "quality": args.quality, "aspect": args.aspect}
    optional = {
        "title": args.title,
        "duration": args.duration,
        "assets": args.asset,
        "music": args.music,
        "subtitles": args.subtitles,
        "voice": args.voice,
        "narration": "none" if args.silent else None,
        "speech_rate": args.speech_rate,
    }
    body.update((field, value) for field, value in optional.items() if value)
    job = api.post_data("/api/v1/videos/generate", body)
    if not args.wait:
        if args.json:
            print_json(job)
        else:
            _print_job(job)
        return 0
    final = wait_for_job(api, job["id"], quiet=args.json)
    if args.json:
        print_json(final)
    else:
        _print_result(api, final)
    if final["status"] != "completed":
        reason = final.get("error") or final["status"]
        raise CliError(f"job {final['id']} {final['status']}: {reason}")
    return 0


def wait_for_job(api: Api, job_id: str, *, quiet: bool = False) -> dict[str, Any]:
    """Follow the job's live events with a progress bar; the finished job."""
    bar: ProgressBar | None = None
    stage = "queued"
    progress = 0
    for event in follow_job(api, job_id):
        data = event.data if isinstance(event.data, dict) else {}
        if event.type == "snapshot":
            stage = data.get("current_stage") or data.get("status") or stage
            progress = int(data.get("progress") or 0)
        elif event.type in ("status", "progress"):
            stage = data.get("current_stage") or stage
            progress = int(data.get("progress", progress))
        elif event.type == "stage":
            stage = data.get("stage") or stage
            progress = int(data.get("progress", progress))
        elif event.type == "end":
            progress = int(data.get("progress", progress))
            if bar is not None:
                bar.done = progress
                bar.close(label=f"{job_id} {data.get('status')}")
            break
        if not quiet:
            label = f"{job_id} {stage}"
            if bar is None:
                bar = ProgressBar(label, 100, unit="percent", start=progress)
            else:
                bar.update(progress, label)
    job: dict[str, Any] = api.get_data(f"/api/v1/jobs/{job_id}")
    return job


def _print_result(api: Api, job: dict[str, Any]) -> None:
    links = job.get("links") or {}
    pairs: list[tuple[str, Any]] = [
        ("job", job["id"]),
        ("status", job["status"]),
        ("progress", f"{job['progress']}%"),
    ]
    if job["status"] == "completed":
        result = job.get("result") or {}
        pairs += [
            ("file", result.get("file_id")),
            ("duration", f"{result.get('duration')} s"),
            ("download", api.url(links.get("download_url", ""))),
            ("stream", api.url(links.get("stream_url", ""))),
        ]
    elif job.get("error"):
        pairs.append(("error", job["error"]))
    print_fields(pairs)


def _print_job(job: dict[str, Any]) -> None:
    print_fields(
        [
            ("job", job["id"]),
            ("status", job["status"]),
            ("progress", f"{job['progress']}%"),
            ("stage", job.get("current_stage")),
            ("created", job.get("created_at")),
            ("completed", job.get("completed_at")),
            ("error", job.get("error")),
        ]
    )


# -- jobs ---------------------------------------------------------------------


def cmd_jobs(args: argparse.Namespace) -> int:
    api = Api(server_of(args))
    if args.action != "list" and not args.job_id:
        raise CliError(f"'jobs {args.action}' needs a job id", 2)
    if args.action == "list":
        query: dict[str, Any] = {"page": args.page, "items_per_page": args.limit or 20}
        if args.status:
            query["status"] = args.status
        page = api.get_data("/api/v1/jobs", query)
        if args.json:
            print_json(page)
        else:
            print_table(
                ("ID", "STATUS", "PROGRESS", "STAGE", "CREATED"),
                [
                    (j["id"], j["status"], f"{j['progress']}%", j["current_stage"], j["created_at"])
                    for j in page["items"]
                ],
            )
        return 0
    path = f"/api/v1/jobs/{args.job_id}"
    if args.action == "show":
        job = api.get_data(path)
        if args.json:
            print_json(job)
        else:
            _print_job(job)
        return 0
    if args.action == "logs":
        query = {"limit": args.limit or 200}
        if args.level:
            query["level"] = args.level
        logs = api.get_data(f"{path}/logs", query)
        if args.json:
            print_json(logs)
        else:
            print_table(
                ("TIME", "LEVEL", "MESSAGE"),
                [(e["timestamp"], e["level"], e["message"]) for e in logs["logs"]],
            )
        return 0
    job = api.post_data(f"{path}/cancel")  # action == "cancel"
    if args.json:
        print_json(job)
    else:
        print(f"Cancelled {job['id']}")
    return 0


# -- voices -------------------------------------------------------------------


def cmd_voices(args: argparse.Namespace) -> int:
    api = Api(server_of(args))
    voices = api.get_data("/api/v1/voices")
    if args.json:
        print_json(voices)
        return 0
    print_table(
        ("ID", "ENGINE", "LANGUAGES", "QUALITY", "LICENCE"),
        [
            (v["id"], v["engine"], ",".join(v["languages"]), v["quality"], v["licence"])
            for v in voices["items"]
        ],
    )
    return 0


# -- files --------------------------------------------------------------------


def cmd_files(args: argparse.Namespace) -> int:
    api = Api(server_of(args))
    query: dict[str, Any] = {"page": args.page, "items_per_page": args.limit}
    if args.type:
        query["file_type"] = args.type
    page = api.get_data("/api/v1/files", query)
    if args.json:
        print_json(page)
        return 0
    print_table(
        ("ID", "NAME", "TYPE", "SIZE", "STATUS", "CREATED"),
        [
            (
                f["id"],
                f["filename"],
                f["file_type"],
                human_bytes(f["size"]),
                f["processing_status"],
                f["created_at"],
            )
            for f in page["items"]
        ],
    )
    pagination = page.get("pagination") or {}
    if pagination.get("has_next"):
        print(f"(page {pagination['page']} of {pagination['total_pages']}; --page for more)")
    return 0


# -- download -----------------------------------------------------------------


def _file_to_download(api: Api, item_id: str) -> tuple[str, dict[str, Any]]:
    """The download path and the file record (name, size, checksum) of a
    file id, or of a job id's finished video."""
    if item_id.startswith("job_"):
        job = api.get_data(f"/api/v1/jobs/{item_id}")
        file_id = (job.get("result") or {}).get("file_id")
        if job["status"] != "completed" or not file_id:
            raise CliError(f"job {item_id} is {job['status']}: no video to download")
        return f"/api/v1/videos/{item_id}/download", api.get_data(f"/api/v1/files/{file_id}")
    if item_id.startswith("file_"):
        return f"/api/v1/files/{item_id}/download", api.get_data(f"/api/v1/files/{item_id}")
    raise CliError(f"{item_id!r} is neither a file id (file_…) nor a job id (job_…)", 2)


def _safe_name(name: str | None) -> str | None:
    # Only a bare name: never a path the server could point elsewhere.
    name = os.path.basename((name or "").replace("\\", "/")).strip()
    return None if name in ("", ".", "..") else name


def _total_size(content_range: str | None) -> int | None:
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    return None


def cmd_download(args: argparse.Namespace) -> int:
    api = Api(server_of(args))
    path, record = _file_to_download(api, args.id)
    name = _safe_name(record.get("filename")) or args.id
    target = Path(args.output or name)
    if target.is_dir():
        target = target / name
    if not target.parent.is_dir():
        raise CliError(f"no such directory: {target.parent}", 2)
    part = target.with_name(target.name + ".part")
    checksum = str(record.get("checksum") or "").removeprefix("sha256:")
    size = _resume_into(api, path, part, checksum, int(record["size"]), target.name)
    if checksum and _sha256(part) != checksum:
        part.unlink()
        raise CliError(f"the downloaded bytes do not match the file's checksum; {part} removed")
    os.replace(part, target)
    if args.json:
        print_json({"id": args.id, "path": str(target), "size": size, "sha256": checksum})
    else:
        print(f"Saved {target} ({human_bytes(size)})")
    return 0


def _resume_into(api: Api, path: str, part: Path, checksum: str, size: int, label: str) -> int:
    """Fetch into ``part``, continuing after the bytes it already has."""
    have = part.stat().st_size if part.exists() else 0
    if have > size:  # not a prefix of this file
        part.unlink()
        have = 0
    headers: dict[str, str] = {}
    if 0 < have < size:
        headers["Range"] = f"bytes={have}-"
        if checksum:
            # T2M's ETag of a file's bytes is their quoted sha256: the range
            # is sent only if the file is still the one the .part began with.
            headers["If-Range"] = f'"{checksum}"'
    if have == size:
        return size  # complete already; the checksum decides
    response = api.send("GET", path, headers=headers, timeout_s=120)
    if response.status == 206:
        total = _total_size(response.header("Content-Range")) or size
        mode = "ab"
    else:  # 200: the whole file (no .part, or it no longer matches)
        have, total, mode = 0, int(response.header("Content-Length") or size), "wb"
    bar = ProgressBar(label, total, start=have)
    try:
        with part.open(mode) as handle:
            for chunk in response.chunks():
                handle.write(chunk)
                bar.advance(len(chunk))
    except OSError as exc:
        bar.close("interrupted")
        raise CliError(
            f"download interrupted at {human_bytes(bar.done)} ({exc}); "
            f"run it again to resume from {part}"
        ) from exc
    received = part.stat().st_size
    if received != total:
        bar.close("incomplete")
        raise CliError(f"received {received} of {total} bytes; run it again to resume from {part}")
    bar.close(f"done, {human_bytes(received)}")
    return received


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- wiring -------------------------------------------------------------------


def add_client_commands(sub: Any) -> None:
    """Add the client subcommands to the ``t2m`` parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server", help="server URL (default: $T2M_SERVER, else the last one signed in to)"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    login = sub.add_parser("login", parents=[common], help="sign in to a T2M server")
    login.add_argument("--username", "-u")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    login.set_defaults(func=run(cmd_login))

    logout = sub.add_parser("logout", parents=[common], help="sign out and forget the tokens")
    logout.set_defaults(func=run(cmd_logout))

    upload = sub.add_parser("upload", parents=[common], help="upload files (a progress bar each)")
    upload.add_argument("files", nargs="+", metavar="FILE")
    upload.add_argument("--title")
    upload.add_argument("--description")
    upload.add_argument("--tag", action="append", help="a tag (repeatable)")
    upload.set_defaults(func=run(cmd_upload))

    generate = sub.add_parser("generate", parents=[common], help="turn a script file into a video")
    generate.add_argument("script", metavar="SCRIPT.txt")
    generate.add_argument("--quality", default="720p", choices=("480p", "720p", "1080p"))
    generate.add_argument("--aspect", default="16:9", choices=("16:9", "9:16", "1:1"))
    generate.add_argument("--title")
    generate.add_argument("--duration", type=float, help="target seconds")
    generate.add_argument(
        "--asset", action="append", metavar="ID", help="one of your files (repeatable)"
    )
    generate.add_argument("--music", metavar="ID", help="an audio file of yours")
    generate.add_argument("--subtitles", choices=("none", "burned", "sidecar", "karaoke"))
    generate.add_argument("--voice", metavar="ID", help="narration voice (see `t2m voices`)")
    generate.add_argument("--silent", action="store_true", help="no narration")
    generate.add_argument("--speech-rate", type=float, metavar="X", help="1.0 = normal speed")
    generate.add_argument(
        "--wait", action="store_true", help="follow the job live until it finishes"
    )
    generate.set_defaults(func=run(cmd_generate))

    jobs = sub.add_parser(
        "jobs", parents=[common], help="list, show, follow the logs of, cancel jobs"
    )
    jobs.add_argument(
        "action", nargs="?", default="list", choices=("list", "show", "logs", "cancel")
    )
    jobs.add_argument("job_id", nargs="?", metavar="ID")
    jobs.add_argument(
        "--status", choices=("queued", "processing", "completed", "failed", "cancelled")
    )
    jobs.add_argument("--level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    jobs.add_argument("--page", type=int, default=1)
    jobs.add_argument("--limit", type=int, help="jobs per page (20) or log lines (200)")
    jobs.set_defaults(func=run(cmd_jobs))

    download = sub.add_parser(
        "download", parents=[common], help="download a file or a job's video (resumable)"
    )
    download.add_argument("id", metavar="ID", help="a file id (file_…) or a job id (job_…)")
    download.add_argument("-o", "--output", metavar="FILE")
    download.set_defaults(func=run(cmd_download))

    voices = sub.add_parser("voices", parents=[common], help="list the narration voices")
    voices.set_defaults(func=run(cmd_voices))

    files = sub.add_parser("files", parents=[common], help="list your files")
    files.add_argument("--type", choices=("document", "image", "video", "audio"))
    files.add_argument("--page", type=int, default=1)
    files.add_argument("--limit", type=int, default=20)
    files.set_defaults(func=run(cmd_files))
