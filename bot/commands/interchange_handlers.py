"""``/poam export`` (a file in your DM) and ``/poam import`` (a form: upload,
check, confirm; admins only)."""

from __future__ import annotations

import io
import logging
import urllib.request
from http.client import HTTPMessage
from typing import IO, Any
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.blockkit.blocks import Block, context, plain, section
from bot.blockkit.text import escape
from bot.commands import metadata
from bot.commands.context import Reply, SlackRequest
from bot.commands.grammar import Parsed
from bot.commands.handlers import handles
from bot.commands.ids import VALUE, BlockId, CallbackId
from bot.commands.named_people import learn_about
from bot.commands.saved_forms import refuse_if_saved, save_once
from bot.commands.views import cards
from bot.interchange.exports import ExportFormat, export
from bot.interchange.findings import ImportFormatError
from bot.interchange.importing import MAX_IMPORT_BYTES, read_findings
from bot.poam.errors import PoamError
from bot.poam.imports import ImportSummary, check_findings, file_digest, import_findings
from bot.poam.permissions import require_admin
from bot.poam.systems import find_system
from bot.rate_limits import waiting_longer
from bot.tls import tls_context

log = logging.getLogger(__name__)
DOWNLOAD_TIMEOUT_SECONDS = 20


class SlackRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a file's redirects within Slack (a few: Enterprise Grid sends
    ``files.slack.com`` on to ``files-origin.slack.com``), the bot token with
    them; to Slack's CDN (``slack-edge.com``, signed links) without it; to
    anywhere else, none: the token would go with it."""

    max_redirections = 3

    def __init__(self, *, api_url: str) -> None:
        super().__init__()
        self._api_url = api_url

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        if from_slack(newurl, api_url=self._api_url):
            return super().redirect_request(req, fp, code, msg, headers, newurl)
        parts = urlsplit(newurl)
        if parts.scheme == "https" and (parts.hostname or "").endswith(".slack-edge.com"):
            followed = super().redirect_request(req, fp, code, msg, headers, newurl)
            if followed is not None:
                followed.remove_header("Authorization")
            return followed
        return None


def _deliver_export(fmt: ExportFormat, system: str | None) -> Any:
    def work(request: SlackRequest) -> str | None:
        buffer = io.BytesIO()
        try:
            with request.transaction(read_only=True, snapshot=True) as (session, actor):
                done = export(
                    session, buffer, fmt=fmt, rules=actor.rules, now=actor.now(), team_id=actor.team_id,
                    system_name=system, csp=request.services.settings.poam_csp_name,
                )
        except PoamError as error:
            return escape(error.message)
        client = waiting_longer(request.client)  # a long export is not lost to a 429
        try:
            channel = client.conversations_open(users=request.user_id)["channel"]["id"]
            client.files_upload_v2(
                channel=channel, file=buffer.getvalue(), filename=done.filename, title=f"POA&M export ({fmt.value})",
                initial_comment=f"Your POA&M export: {done.count} item(s).",
            )
        except (SlackApiError, SlackClientError, OSError, KeyError) as error:
            log.warning("export upload for %s failed: %s", request.user_id, error)
            return "I couldn't send the export file to your DM (Slack said no); try again in a moment."
        return None

    return work


@handles("export")
def export_(request: SlackRequest, cmd: Parsed) -> Reply:
    """Checks the system named (a typo was refused only in a message after
    "on its way"), and says which one a workbook or OSCAL export covers."""
    fmt: ExportFormat = cmd["format"]
    covers = ""
    if fmt.per_system or cmd["system"] is not None:
        with request.transaction() as (session, actor):  # a first use sets the workspace up
            system = find_system(session, actor, name=cmd["system"])
        covers = f" of the {escape(system.name)} system"
    return Reply(
        text="Export on its way",
        blocks=cards.done(f"Your {fmt.value.upper()} export{covers} is on its way to your DM."),
        later=[_deliver_export(fmt, cmd["system"])],
    )


# ---------------------------------------------------------------- import


def import_modal() -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": CallbackId.IMPORT_MODAL,
        "title": plain("Import findings", 24),
        "submit": plain("Check"),
        "close": plain("Cancel"),
        "blocks": [
            section("Upload a SARIF, Nessus (.nessus), CSV or FedRAMP workbook (.xlsx) file. "
                    "I check it first and show what it would change; nothing is imported until you confirm."),
            {
                "type": "input",
                "block_id": BlockId.FILE,
                "label": plain("File"),
                "element": {"type": "file_input", "action_id": VALUE, "max_files": 1,
                            "filetypes": ["sarif", "json", "nessus", "xml", "csv", "xlsx"]},
            },
        ],
    }


@handles("import")
def import_(request: SlackRequest, cmd: Parsed) -> Reply:
    with request.transaction(read_only=True) as (_session, actor):
        require_admin(actor, "import findings")
    return Reply(text="Opening the form…", modal=import_modal())


def uploaded_file(view: dict[str, Any]) -> metadata.UploadedFile:
    """The file the form's file input holds."""
    state = (view.get("state") or {}).get("values") or {}
    files = ((state.get(BlockId.FILE) or {}).get(VALUE) or {}).get("files") or []
    if not files:
        raise ImportFormatError("file", "no file was uploaded")
    chosen = files[0]
    upload = metadata.UploadedFile(
        name=str(chosen.get("name") or "upload"), url=str(chosen.get("url_private_download") or chosen.get("url_private") or "")
    )
    try:  # the form keeps the file between its check and its confirmation: it must fit
        upload.check()
        metadata.dump(upload)
    except ValueError:
        raise ImportFormatError("file", "has too long a name to keep on the form; rename it shorter and upload it again") from None
    return upload


def from_slack(url: str, *, api_url: str) -> bool:
    """Whether ``url`` is Slack's (so the bot token may be sent to it): the Web
    API's own host, or Slack's (GovSlack's) file hosts over https."""
    parts, api = urlsplit(url), urlsplit(api_url)
    if (parts.scheme, parts.netloc) == (api.scheme, api.netloc):
        return True
    host = parts.hostname or ""
    return parts.scheme == "https" and host.endswith((".slack.com", ".slack-gov.com"))


def download(request: SlackRequest, upload: metadata.UploadedFile) -> bytes:
    """The uploaded file's bytes, fetched with the bot token (files:read)."""
    token = request.client.token or ""
    query = urllib.request.Request(upload.url, headers={"Authorization": f"Bearer {token}"})
    redirects = SlackRedirects(api_url=request.services.settings.slack_api_url)
    opener = urllib.request.build_opener(redirects, urllib.request.HTTPSHandler(context=tls_context()))
    with opener.open(query, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
        data = response.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFormatError("file", f"is larger than {MAX_IMPORT_BYTES:,} bytes")
    return data


def check_or_import(request: SlackRequest, upload: metadata.UploadedFile, *, confirm: bool,
                    view_id: str | None = None) -> tuple[ImportSummary, str]:
    """Import the file, or (``confirm`` False) only count what importing it
    would do. Imported from the form ``view_id`` once (:class:`SavedBefore`)."""
    if not from_slack(upload.url, api_url=request.services.settings.slack_api_url):
        raise ImportFormatError("file", "does not come from Slack")
    with request.transaction(read_only=True) as (_session, actor):  # before fetching the file: its
        require_admin(actor, "import findings")  # parse errors quote it (an admin's rights taken back meanwhile)
    if confirm:
        request.refuse_a_copy()  # before the download: a captured request sent again gets nowhere,
        with request.transaction(read_only=True) as (session, _actor):  # nor Import pressed again
            refuse_if_saved(session, request, view_id, what="imported")
    data = download(request, upload)
    findings, digest = read_findings(upload.name, data), file_digest(data)
    if not confirm:
        with request.transaction(read_only=True) as (session, actor):
            return check_findings(session, actor, findings=findings, digest=digest), ""
    with request.transaction() as (session, actor):
        save_once(session, request, view_id, what="imported")
        summary = import_findings(session, actor, findings=findings, source_name=upload.name, digest=digest)
        label = ", ".join(actor.rules.label(n) for n in summary.numbers[:10])
    learn_about(request, summary.owners)
    return summary, label


def result_view(upload: metadata.UploadedFile, summary: ImportSummary | None, *, problem: str | None,
                confirmed: bool, numbers: str = "", saved_before: str | None = None) -> dict[str, Any]:
    """The form after a check (confirm button) or after the import (or
    ``saved_before``: after Import pressed again)."""
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": CallbackId.IMPORT_CONFIRM,
        "title": plain("Import findings", 24),
        "close": plain("Close"),
        "private_metadata": metadata.dump(upload),
    }
    name = escape(upload.name)
    if saved_before is not None:
        view["blocks"] = [section(f":white_check_mark: *{name}*: {escape(saved_before)}")]
    elif problem is not None:
        view["blocks"] = [section(f":no_entry: *{name}* cannot be imported: {escape(problem)}"),
                          context("Nothing was imported. Fix the file and upload it again.")]
    elif confirmed:
        assert summary is not None
        view["blocks"] = [section(f":white_check_mark: Imported *{name}*: {summary}."),
                          context(f"New: {numbers}" if numbers else "No new items.")]
    else:
        assert summary is not None
        view["submit"] = plain("Import")
        view["blocks"] = [section(f"*{name}* would bring: {summary}."),
                          context("Nothing is imported until you press Import.")]
    return view


def result_message(view: dict[str, Any]) -> tuple[str, list[Block]]:
    """A :func:`result_view` as a message (text, blocks), for when the form
    could not show it (closed, or Slack failing): after a check, its Import
    button went with the form."""
    blocks = list(view["blocks"])
    if "submit" in view:
        blocks[1:] = [context("I could not show this on the form, so nothing was imported: "
                              "run `/poam import` and upload the file again to import it.")]
    return str(blocks[0]["text"]["text"]), blocks
