"""Chorus Pro for real, through the PISTE gateway: deposit a flow, then follow its invoice.

Every call carries a PISTE bearer token (OAuth 2.0 client credentials, cached until shortly before its
``expires_in``; a 401 drops it and the call is made once more with a fresh one) and the ``cpro-account`` header
(base64 of the technical account's ``login:password``).

- ``deposit``: ``POST {api_url}/cpro/factures/v1/deposer/flux`` with ``fichierFlux`` (base64), ``nomFichier``,
  ``syntaxeFlux`` and ``avecSignature: false``; the answer's ``numeroFluxDepot`` is the ``chorus_id``.
- ``status``: ``POST {api_url}/cpro/factures/v1/rechercher/fournisseur`` on ``numeroFluxDepot`` gives, once Chorus
  Pro has integrated the flow, the invoice's ``statut``, ``dateHeureEtatCourant`` and ``commentaireEtatCourant``;
  until then ``POST {api_url}/cpro/transverses/v1/consulterCRDetaille`` gives the flow's state
  (``etatCourantDepotFlux``): still being processed is ``deposee``, ``IN_REJETE``/``IN_INCIDENTE`` is
  ``rejetee`` with the first ``libelleErreurDP`` as the reason.

Errors: timeouts, connection errors, HTTP 429, 5xx, 403/404 (an API the PISTE application is not subscribed to,
a wrong ``api_url``), a second 401 and unreadable answers are ``ChorusUnavailable`` (retry: nothing is wrong with
the invoice); a ``codeRetour`` other than 0 in the deposit's answer (HTTP 200 or 4xx) is ``ChorusRefused(libelle)``.

What was checked, and where (public sources found by search; never called for real: no PISTE account here):

- PISTE: token endpoint ``https://[sandbox-]oauth.piste.gouv.fr/api/oauth/token`` with a form body
  ``grant_type=client_credentials``, ``client_id``, ``client_secret``, ``scope=openid``; API base
  ``https://[sandbox-]api.piste.gouv.fr`` + ``/cpro/…``; the ``cpro-account`` header — cpro-docs.choruspay.fr
  "Getting Started", and OCA/l10n-france ``l10n_fr_chorus_account/models/res_company.py`` (token, headers,
  240 s expiry margin).
- ``deposer/flux`` body and answer (``codeRetour``, ``libelle``, ``numeroFluxDepot``, ``dateDepot``,
  ``syntaxeFlux``): turbo124/piste-gouv-fr ``src/Api/ChorusPro/Factures.php`` and ``WsRetourDeposerFluxFacture``,
  glitchr-studio/omnibill-chorus-pro test fixtures (a refusal answers ``{"codeRetour": 20001, "libelle":
  "GDP_MSG_11.022"}``: ``libelle`` is often a message code, not a sentence).
- Syntaxes: ``IN_DP_E2_CII_FACTURX`` for Factur-X, ``IN_DP_E1_UBL_INVOICE`` for a full UBL invoice (E1 =
  structured flow; OCA's ``l10n_fr_chorus_ubl`` and the code list of piste-gouv-fr ``ISyntaxeFlux.php``).
  ``IN_DP_E2_UBL_INVOICE`` is not in Chorus Pro's published list (E2 UBL exists only as the minimal
  ``IN_DP_E2_UBL_INVOICE_MIN`` beside a PDF), so it is not used.
- Following a flow: ``consulterCRDetaille`` on ``numeroFluxDepot`` (communaute.chorus-pro.gouv.fr "Show detailed
  report"; OCA notes ``consulterCR`` does not work for Factur-X), the flow states ``IN_RECU`` … ``IN_INTEGRE``
  (pypi ``chorus-api`` README), then ``rechercher/fournisseur`` filtered on ``numeroFluxDepot`` (OCA
  ``chorus_flow.py``), whose rows carry ``statut``, ``dateHeureEtatCourant`` and ``commentaireEtatCourant``.
- Invoice statuses (``statut``): the list in piste-gouv-fr ``IStatutFacture.php`` and the recipient statuses of
  communaute.chorus-pro.gouv.fr "recupererEtatsPossiblesPourTraitement".

Not verified: the exact HTTP status Chorus Pro uses for a functional refusal (200 and 400 are both handled),
whether ``rechercher/fournisseur`` needs ``idUtilisateurCourant`` for a technical account (not sent, as OCA), and
the reading of ``A_RECYCLER`` (sent back to the supplier to re-address: ``suspendue`` here) and of
``COMPTABILISEE`` / ``MISE_A_DISPOSITION_COMPTABLE`` (after the payment order: ``mandatee`` here).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

import httpx
import msgspec

from adapters.chorus.base import ChorusRefused, ChorusStatus, ChorusUnavailable, Deposit, StatusReport, Submission
from broker.settings import ChorusSettings

logger = logging.getLogger("broker.chorus")

DEPOSIT_PATH = "/cpro/factures/v1/deposer/flux"
SEARCH_PATH = "/cpro/factures/v1/rechercher/fournisseur"
FLOW_REPORT_PATH = "/cpro/transverses/v1/consulterCRDetaille"

SYNTAXES: Mapping[str, str] = {"factur-x": "IN_DP_E2_CII_FACTURX", "ubl": "IN_DP_E1_UBL_INVOICE"}

#: The settings the PISTE mode needs, with the environment variable each comes from.
REQUIRED: Mapping[str, str] = {
    "client_id": "BROKER_CHORUS_CLIENT_ID",
    "client_secret": "BROKER_CHORUS_CLIENT_SECRET",
    "login": "BROKER_CHORUS_LOGIN",
    "password": "BROKER_CHORUS_PASSWORD",
}

#: Chorus Pro's invoice statuses (``statut``) as the broker follows them.
INVOICE_STATUSES: Mapping[str, ChorusStatus] = {
    "DEPOSEE": ChorusStatus.DEPOSEE,
    "EN_COURS_ACHEMINEMENT": ChorusStatus.DEPOSEE,
    "EN_COURS_TRAITEMENT_PIVOT_S": ChorusStatus.DEPOSEE,
    "A_VALIDER_1": ChorusStatus.DEPOSEE,
    "VALIDEE_1": ChorusStatus.DEPOSEE,
    "A_VALIDER_2": ChorusStatus.DEPOSEE,
    "VALIDEE_2": ChorusStatus.DEPOSEE,
    "MISE_A_DISPOSITION": ChorusStatus.MISE_A_DISPOSITION,
    "PRISE_EN_COMPTE_DESTINATAIRE": ChorusStatus.MISE_A_DISPOSITION,
    "COMPLETEE": ChorusStatus.MISE_A_DISPOSITION,  # completed by the supplier, back with the buyer
    "SERVICE_FAIT": ChorusStatus.SERVICE_FAIT,
    "MANDATEE": ChorusStatus.MANDATEE,
    "MISE_A_DISPOSITION_COMPTABLE": ChorusStatus.MANDATEE,
    "COMPTABILISEE": ChorusStatus.MANDATEE,
    "MISE_EN_PAIEMENT": ChorusStatus.MISE_EN_PAIEMENT,
    "SUSPENDUE": ChorusStatus.SUSPENDUE,
    "A_COMPLETER": ChorusStatus.SUSPENDUE,
    "A_RECYCLER": ChorusStatus.SUSPENDUE,  # to be re-addressed to another service of the buyer
    "REJETEE": ChorusStatus.REJETEE,
    "REFUSEE_1": ChorusStatus.REJETEE,
    "REFUSEE_2": ChorusStatus.REJETEE,
    "ABANDONNEE": ChorusStatus.REJETEE,
    "SUPPRIMEE": ChorusStatus.REJETEE,
}

#: Flow states (``etatCourantDepotFlux``) before the invoice exists in Chorus Pro: the deposit is being processed.
FLOW_PENDING = frozenset(
    {
        "IN_RECU",
        "IN_TRAITE_SE_CPP",
        "IN_EN_ATTENTE_TRAITEMENT_CPP",
        "IN_EN_COURS_TRAITEMENT_CPP",
        "IN_EN_ATTENTE_RETRAITEMENT_CPP",
        "IN_INTEGRE",
        "IN_INTEGRE_PARTIEL",
    }
)
#: Flow states meaning the invoice will never reach the buyer.
FLOW_REJECTED = frozenset({"IN_REJETE", "IN_INCIDENTE"})
#: The reason given when Chorus Pro rejects a flow without listing its errors.
FLOW_REJECTION_REASONS: Mapping[str, str] = {
    "IN_REJETE": "Flux rejeté par Chorus Pro : il comporte des anomalies",
    "IN_INCIDENTE": "Flux non traité par Chorus Pro (incident) : il faut le déposer de nouveau",
}

_TOKEN_MARGIN_S = 60.0
_UNAVAILABLE_STATUSES = frozenset({403, 404, 408, 429})
_USER_AGENT = "fabrication-broker-chorus/1"


class _Token(msgspec.Struct):
    access_token: str
    expires_in: float = 3600.0


class _Answer(msgspec.Struct):
    """What every Chorus Pro answer carries; ``codeRetour`` 0 means done."""

    codeRetour: int = 0
    libelle: str | None = None


class _DepositAnswer(_Answer):
    numeroFluxDepot: str | None = None
    dateDepot: str | None = None


class _InvoiceRow(msgspec.Struct):
    statut: str | None = None
    numeroFluxDepot: str | None = None
    dateDepot: str | None = None
    dateHeureEtatCourant: str | None = None
    commentaireEtatCourant: str | None = None


class _SearchAnswer(_Answer):
    listeFactures: list[_InvoiceRow] | None = None


class _FlowError(msgspec.Struct):
    libelleErreurDP: str | None = None
    libelleErreur: str | None = None  # listeErreurTechnique's rows


class _FlowReport(_Answer):
    etatCourantDepotFlux: str | None = None
    dateDepotFlux: str | None = None
    dateHeureEtatCourantFlux: str | None = None
    # A list in the API annex; one example of the documentation shows a single object.
    listeErreurDP: list[_FlowError] | _FlowError | None = None
    listeErreurTechnique: list[_FlowError] | _FlowError | None = None


_T = TypeVar("_T", bound=msgspec.Struct)


class PisteChorusPro:
    """The ``ChorusPro`` port over httpx. One instance per process; ``aclose`` closes its connections."""

    def __init__(
        self,
        settings: ChorusSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        client_id, client_secret, login, password = (
            settings.client_id,
            settings.client_secret,
            settings.login,
            settings.password,
        )
        if not (client_id and client_secret and login and password):
            missing = [variable for field, variable in REQUIRED.items() if not getattr(settings, field)]
            raise ValueError(f"BROKER_CHORUS_MODE=piste needs {', '.join(missing)}")
        self._api_url = settings.api_url.rstrip("/")
        self._oauth_url = settings.oauth_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._account = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()
        self._client = httpx.AsyncClient(
            transport=transport, timeout=settings.timeout_s, headers={"User-Agent": _USER_AGENT}
        )

    def __repr__(self) -> str:  # never the secrets
        return f"PisteChorusPro(api_url={self._api_url!r})"

    async def deposit(self, submission: Submission, *, today: date) -> Deposit:
        """Deposit ``submission.content`` as one flow; its ``numeroFluxDepot`` becomes the ``chorus_id``."""
        body = {
            "fichierFlux": base64.b64encode(submission.content).decode("ascii"),
            "nomFichier": submission.file_name,
            "syntaxeFlux": SYNTAXES[submission.syntax],
            "avecSignature": False,
        }
        status_code, raw = await self._post(DEPOSIT_PATH, body)
        answer = _decode(raw, _DepositAnswer, DEPOSIT_PATH)
        if answer.codeRetour != 0:
            reason = answer.libelle or f"codeRetour {answer.codeRetour}"
            logger.info("Chorus Pro refused the deposit of %s: %s", submission.number, reason)
            raise ChorusRefused(reason)
        if not 200 <= status_code < 300 or not answer.numeroFluxDepot:
            raise ChorusUnavailable(f"{DEPOSIT_PATH}: HTTP {status_code} without a flow number")
        logger.info("Deposited %s on Chorus Pro as flow %s", submission.number, answer.numeroFluxDepot)
        return Deposit(chorus_id=answer.numeroFluxDepot, deposited_on=_date(answer.dateDepot) or today)

    async def status(self, chorus_id: str, *, today: date) -> StatusReport:
        """The invoice's status once Chorus Pro integrated the flow ``chorus_id``, else the flow's."""
        _, raw = await self._post(SEARCH_PATH, {"numeroFluxDepot": chorus_id})
        search = _decode(raw, _SearchAnswer, SEARCH_PATH)
        rows = [row for row in search.listeFactures or () if row.numeroFluxDepot in (None, chorus_id)]
        if rows:
            return _invoice_report(rows[0], today=today)
        _, raw = await self._post(FLOW_REPORT_PATH, {"numeroFluxDepot": chorus_id})
        return _flow_report(_decode(raw, _FlowReport, FLOW_REPORT_PATH), today=today)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: Mapping[str, Any]) -> tuple[int, bytes]:
        """POST to Chorus Pro; the answer when it is worth reading (2xx, or a 4xx that may explain a refusal)."""
        response = await self._send_with_token(path, body)
        if response.status_code == 401:
            self._token = None  # expired or revoked before its time: one more try with a fresh token
            response = await self._send_with_token(path, body)
            if response.status_code == 401:
                raise ChorusUnavailable(f"{path}: PISTE refused a fresh token (HTTP 401)")
        status_code = response.status_code
        if status_code >= 500 or status_code in _UNAVAILABLE_STATUSES:
            raise ChorusUnavailable(f"{path}: HTTP {status_code}")
        return status_code, response.content

    async def _send_with_token(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {await self._bearer()}",
            "cpro-account": self._account,
            "Accept": "application/json",
        }
        return await self._send(self._api_url + path, json=body, headers=headers)

    async def _bearer(self) -> str:
        async with self._token_lock:
            if self._token is None or self._clock() >= self._token_expires_at:
                self._token = await self._fetch_token()
            return self._token

    async def _fetch_token(self) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "scope": "openid",
        }
        response = await self._send(self._oauth_url, data=form)
        if response.status_code != 200:
            # Wrong client credentials (400/401) are no reason to reject the invoice: the operator fixes them.
            raise ChorusUnavailable(f"PISTE token endpoint: HTTP {response.status_code}")
        token = _decode(response.content, _Token, "PISTE token endpoint")
        self._token_expires_at = self._clock() + max(token.expires_in - _TOKEN_MARGIN_S, token.expires_in / 2)
        return token.access_token

    async def _send(self, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.post(url, **kwargs)
        except httpx.TimeoutException as exc:
            raise ChorusUnavailable(f"{url}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ChorusUnavailable(f"{url}: {type(exc).__name__}") from exc


def _decode(raw: bytes, kind: type[_T], what: str) -> _T:
    try:
        return msgspec.json.decode(raw, type=kind, strict=False)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise ChorusUnavailable(f"{what}: unreadable answer ({exc})") from exc


def _date(value: str | None) -> date | None:
    """The calendar day of a Chorus Pro date or date-time (``2026-10-08`` or ``2026-10-08T10:12:00+02:00``)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _invoice_report(row: _InvoiceRow, *, today: date) -> StatusReport:
    status = INVOICE_STATUSES.get(row.statut or "")
    if status is None:
        # Unknown to this table: retrying keeps the invoice where it is and the logs say why.
        raise ChorusUnavailable(f"Chorus Pro status {row.statut!r} is not mapped")
    reason = (row.commentaireEtatCourant or None) if status in (ChorusStatus.SUSPENDUE, ChorusStatus.REJETEE) else None
    on = _date(row.dateHeureEtatCourant) or _date(row.dateDepot) or today
    return StatusReport(status=status, on=on, reason=reason)


def _flow_report(report: _FlowReport, *, today: date) -> StatusReport:
    if report.codeRetour != 0:
        raise ChorusUnavailable(f"{FLOW_REPORT_PATH}: codeRetour {report.codeRetour} {report.libelle or ''}".rstrip())
    state = report.etatCourantDepotFlux or ""
    errors = [*_rows(report.listeErreurDP), *_rows(report.listeErreurTechnique)]
    reasons = [text for error in errors if (text := error.libelleErreurDP or error.libelleErreur)]
    if state in FLOW_REJECTED or (state == "IN_INTEGRE_PARTIEL" and reasons):
        on = _date(report.dateHeureEtatCourantFlux) or today
        reason = reasons[0] if reasons else FLOW_REJECTION_REASONS.get(state, report.libelle)
        return StatusReport(status=ChorusStatus.REJETEE, on=on, reason=reason)
    if state in FLOW_PENDING:
        return StatusReport(status=ChorusStatus.DEPOSEE, on=_date(report.dateDepotFlux) or today)
    raise ChorusUnavailable(f"Chorus Pro flow state {state!r} is not mapped")


def _rows(value: list[_FlowError] | _FlowError | None) -> list[_FlowError]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
