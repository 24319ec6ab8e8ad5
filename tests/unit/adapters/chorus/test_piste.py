"""The PISTE adapter against an ``httpx.MockTransport`` playing PISTE and Chorus Pro: never the network."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any
from urllib.parse import parse_qs

import httpx
import msgspec
import pytest

from adapters.chorus.base import ChorusRefused, ChorusStatus, ChorusUnavailable, StatusReport, Submission
from adapters.chorus.factory import make_chorus
from adapters.chorus.piste import PisteChorusPro
from broker.settings import ChorusSettings

API = "https://sandbox-api.piste.gouv.fr"
OAUTH = "https://sandbox-oauth.piste.gouv.fr/api/oauth/token"
SETTINGS = ChorusSettings(
    mode="piste",
    api_url=API,
    oauth_url=OAUTH,
    client_id="piste-app-id",
    client_secret="piste-s3cret",
    login="TECH_1_atelier@cpro.fr",
    password="p4ssw0rd-technique",
    timeout_s=5.0,
)
ACCOUNT = base64.b64encode(b"TECH_1_atelier@cpro.fr:p4ssw0rd-technique").decode()
TODAY = date(2026, 12, 3)
FLOW = "CPP0021100000000000000023"
SUBMISSION = Submission(
    invoice_id="0193a0c4-7d1e-7c3a-9f2e-2b8f5c1d9e01",
    number="F-000042",
    syntax="factur-x",
    content=b"%PDF-1.7 Factur-X \x00\xff",
    file_name="F-000042.pdf",
    seller_siret="55208131766522",
    buyer_siret="21750001600019",
    service_code="SERVICE_ACHATS",
    total_cents=125_000,
)
DEPOSITED = {
    "codeRetour": 0,
    "libelle": "TRA_MSG_00.000",
    "numeroFluxDepot": FLOW,
    "dateDepot": "2026-12-02",
    "syntaxeFlux": "IN_DP_E2_CII_FACTURX",
}

Reply = Callable[[httpx.Request], httpx.Response]


class Chorus:
    """PISTE's token endpoint plus Chorus Pro's routes, each answering from a queue (the last answer repeats)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[str, list[Reply]] = {OAUTH: [self.token_reply]}
        self.tokens_issued = 0
        self.now = 1_000.0

    def token_reply(self, request: httpx.Request) -> httpx.Response:
        self.tokens_issued += 1
        return httpx.Response(
            200,
            json={
                "access_token": f"tok-{self.tokens_issued}",
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "openid",
            },
        )

    def on(self, path: str, *replies: Reply | tuple[int, Any]) -> None:
        self.routes[API + path] = [r if callable(r) else _answer(*r) for r in replies]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.routes[str(request.url)]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        return reply(request)

    def to(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if str(r.url) == (OAUTH if path == "token" else API + path)]


def _answer(status: int, body: Any) -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    return reply


@pytest.fixture
def chorus() -> Chorus:
    return Chorus()


@pytest.fixture
async def adapter(chorus: Chorus) -> AsyncIterator[PisteChorusPro]:
    piste = PisteChorusPro(SETTINGS, transport=httpx.MockTransport(chorus.handler), clock=lambda: chorus.now)
    yield piste
    await piste.aclose()


DEPOSIT = "/cpro/factures/v1/deposer/flux"
SEARCH = "/cpro/factures/v1/rechercher/fournisseur"
REPORT = "/cpro/transverses/v1/consulterCRDetaille"


async def test_deposit_sends_the_token_the_account_and_the_flow(chorus: Chorus, adapter: PisteChorusPro) -> None:
    chorus.on(DEPOSIT, (200, DEPOSITED))
    deposit = await adapter.deposit(SUBMISSION, today=TODAY)
    assert deposit.chorus_id == FLOW
    assert deposit.deposited_on == date(2026, 12, 2)  # Chorus Pro's date, not ours

    [token] = chorus.to("token")
    assert token.method == "POST"
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {key: values[0] for key, values in parse_qs(token.content.decode()).items()}
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "piste-app-id",
        "client_secret": "piste-s3cret",
        "scope": "openid",
    }

    [sent] = chorus.to(DEPOSIT)
    assert sent.method == "POST"
    assert sent.headers["authorization"] == "Bearer tok-1"
    assert sent.headers["cpro-account"] == ACCOUNT
    assert sent.headers["content-type"] == "application/json"
    body = json.loads(sent.content)
    assert body == {
        "fichierFlux": base64.b64encode(SUBMISSION.content).decode(),
        "nomFichier": "F-000042.pdf",
        "syntaxeFlux": "IN_DP_E2_CII_FACTURX",
        "avecSignature": False,
    }
    assert base64.b64decode(body["fichierFlux"]) == SUBMISSION.content


async def test_a_ubl_invoice_is_deposited_as_a_structured_e1_flow(chorus: Chorus, adapter: PisteChorusPro) -> None:
    chorus.on(DEPOSIT, (200, {"codeRetour": 0, "numeroFluxDepot": FLOW}))
    ubl = msgspec.structs.replace(SUBMISSION, syntax="ubl", file_name="F-000042.xml", content=b"<Invoice/>")
    deposit = await adapter.deposit(ubl, today=TODAY)
    assert deposit.deposited_on == TODAY  # no dateDepot in the answer
    assert json.loads(chorus.to(DEPOSIT)[0].content)["syntaxeFlux"] == "IN_DP_E1_UBL_INVOICE"


@pytest.mark.parametrize("status", [200, 400, 422])
async def test_a_functional_refusal_is_final(chorus: Chorus, adapter: PisteChorusPro, status: int) -> None:
    chorus.on(DEPOSIT, (status, {"codeRetour": 20001, "libelle": "GDP_MSG_11.022"}))
    with pytest.raises(ChorusRefused) as refused:
        await adapter.deposit(SUBMISSION, today=TODAY)
    assert refused.value.reason == "GDP_MSG_11.022"


async def test_a_refusal_without_libelle_gives_its_code(chorus: Chorus, adapter: PisteChorusPro) -> None:
    chorus.on(DEPOSIT, (200, {"codeRetour": "20002"}))
    with pytest.raises(ChorusRefused, match="codeRetour 20002"):
        await adapter.deposit(SUBMISSION, today=TODAY)


@pytest.mark.parametrize(
    "answer",
    [
        (500, {"codeRetour": 1}),
        (502, b"<html>Bad gateway</html>"),
        (503, b""),
        (429, {"message": "quota"}),
        (403, {"error": "not subscribed"}),
        (404, b"no route"),
        (400, b"not json"),
        (400, {"libelle": "no code"}),
        (200, b"<html>maintenance</html>"),
        (200, {"codeRetour": 0, "libelle": "no flow number"}),
        (200, {"codeRetour": "zero"}),
    ],
)
async def test_server_errors_and_unreadable_answers_are_retried(
    chorus: Chorus, adapter: PisteChorusPro, answer: tuple[int, Any]
) -> None:
    chorus.on(DEPOSIT, answer)
    with pytest.raises(ChorusUnavailable):
        await adapter.deposit(SUBMISSION, today=TODAY)


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("reset"),
    ],
)
async def test_network_failures_are_retried(chorus: Chorus, adapter: PisteChorusPro, error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    chorus.on(DEPOSIT, fail)
    with pytest.raises(ChorusUnavailable) as unavailable:
        await adapter.deposit(SUBMISSION, today=TODAY)
    assert unavailable.value.__cause__ is error


async def test_the_token_is_reused_until_shortly_before_it_expires(chorus: Chorus, adapter: PisteChorusPro) -> None:
    chorus.on(DEPOSIT, (200, DEPOSITED))
    await adapter.deposit(SUBMISSION, today=TODAY)
    chorus.now += 3_500  # 100 s left of 3600: still good
    await adapter.deposit(SUBMISSION, today=TODAY)
    assert chorus.tokens_issued == 1
    chorus.now += 50  # 50 s left: inside the margin, a new one
    await adapter.deposit(SUBMISSION, today=TODAY)
    assert chorus.tokens_issued == 2
    assert [r.headers["authorization"] for r in chorus.to(DEPOSIT)] == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


async def test_a_401_refreshes_the_token_once(chorus: Chorus, adapter: PisteChorusPro) -> None:
    chorus.on(DEPOSIT, (401, {"error": "invalid_token"}), (200, DEPOSITED))
    assert (await adapter.deposit(SUBMISSION, today=TODAY)).chorus_id == FLOW
    assert [r.headers["authorization"] for r in chorus.to(DEPOSIT)] == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_second_401_is_unavailable(chorus: Chorus, adapter: PisteChorusPro) -> None:
    chorus.on(DEPOSIT, (401, {"error": "invalid_token"}))
    with pytest.raises(ChorusUnavailable, match="401"):
        await adapter.deposit(SUBMISSION, today=TODAY)
    assert len(chorus.to(DEPOSIT)) == 2
    assert chorus.tokens_issued == 2


@pytest.mark.parametrize("answer", [(401, {"error": "invalid_client"}), (503, b""), (200, {"token_type": "Bearer"})])
async def test_token_endpoint_failures_are_unavailable(
    chorus: Chorus, adapter: PisteChorusPro, answer: tuple[int, Any]
) -> None:
    chorus.routes[OAUTH] = [_answer(*answer)]
    chorus.on(DEPOSIT, (200, DEPOSITED))
    with pytest.raises(ChorusUnavailable):
        await adapter.deposit(SUBMISSION, today=TODAY)
    assert chorus.to(DEPOSIT) == []


def _invoice(statut: str, **extra: Any) -> dict[str, Any]:
    row = {
        "identifiantFactureCPP": 4321098,
        "numeroFacture": "F-000042",
        "numeroFluxDepot": FLOW,
        "dateDepot": "2026-12-02",
        "statut": statut,
        "dateHeureEtatCourant": "2026-12-05T10:12:00+01:00",
        "commentaireEtatCourant": "",
    }
    return row | extra


def _found(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"codeRetour": 0, "libelle": "TRA_MSG_00.000", "listeFactures": list(rows)}


@pytest.mark.parametrize(
    ("statut", "expected"),
    [
        ("DEPOSEE", ChorusStatus.DEPOSEE),
        ("EN_COURS_ACHEMINEMENT", ChorusStatus.DEPOSEE),
        ("MISE_A_DISPOSITION", ChorusStatus.MISE_A_DISPOSITION),
        ("COMPLETEE", ChorusStatus.MISE_A_DISPOSITION),
        ("SERVICE_FAIT", ChorusStatus.SERVICE_FAIT),
        ("MANDATEE", ChorusStatus.MANDATEE),
        ("COMPTABILISEE", ChorusStatus.MANDATEE),
        ("MISE_EN_PAIEMENT", ChorusStatus.MISE_EN_PAIEMENT),
        ("SUSPENDUE", ChorusStatus.SUSPENDUE),
        ("A_RECYCLER", ChorusStatus.SUSPENDUE),
        ("REJETEE", ChorusStatus.REJETEE),
    ],
)
async def test_the_invoice_status_is_mapped(
    chorus: Chorus, adapter: PisteChorusPro, statut: str, expected: ChorusStatus
) -> None:
    chorus.on(SEARCH, (200, _found(_invoice(statut))))
    report = await adapter.status(FLOW, today=TODAY)
    assert report == StatusReport(status=expected, on=date(2026, 12, 5))
    [search] = chorus.to(SEARCH)
    assert json.loads(search.content) == {"numeroFluxDepot": FLOW}
    assert search.headers["cpro-account"] == ACCOUNT
    assert chorus.to(REPORT) == []  # found: the flow's report is not needed


async def test_a_suspended_or_rejected_invoice_carries_chorus_pro_s_comment(
    chorus: Chorus, adapter: PisteChorusPro
) -> None:
    comment = "Bon de commande manquant"
    other_flow = _invoice("MISE_EN_PAIEMENT", numeroFluxDepot="CPP0021100000000000000099")
    chorus.on(SEARCH, (200, _found(other_flow, _invoice("SUSPENDUE", commentaireEtatCourant=comment))))
    assert await adapter.status(FLOW, today=TODAY) == StatusReport(
        status=ChorusStatus.SUSPENDUE, on=date(2026, 12, 5), reason=comment
    )
    chorus.on(SEARCH, (200, _found(_invoice("MANDATEE", commentaireEtatCourant="RAS", dateHeureEtatCourant=None))))
    assert await adapter.status(FLOW, today=TODAY) == StatusReport(status=ChorusStatus.MANDATEE, on=date(2026, 12, 2))


async def test_an_unknown_invoice_status_is_unavailable(chorus: Chorus, adapter: PisteChorusPro) -> None:
    chorus.on(SEARCH, (200, _found(_invoice("STATUT_NOUVEAU"))))
    with pytest.raises(ChorusUnavailable, match="STATUT_NOUVEAU"):
        await adapter.status(FLOW, today=TODAY)


def _report(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "codeRetour": 0,
        "libelle": "TRA_MSG_00.000",
        "numeroFluxDepot": FLOW,
        "codeInterfaceDepotFlux": "FFE0111A",
        "dateDepotFlux": "2026-12-02T15:10:25.536+01:00",
        "dateHeureEtatCourantFlux": "2026-12-03T09:00:00+01:00",
        "etatCourantDepotFlux": state,
    } | extra


@pytest.mark.parametrize("state", ["IN_RECU", "IN_EN_COURS_TRAITEMENT_CPP", "IN_INTEGRE"])
async def test_a_flow_still_processed_is_deposee(chorus: Chorus, adapter: PisteChorusPro, state: str) -> None:
    chorus.on(SEARCH, (200, _found()))
    chorus.on(REPORT, (200, _report(state)))
    assert await adapter.status(FLOW, today=TODAY) == StatusReport(status=ChorusStatus.DEPOSEE, on=date(2026, 12, 2))
    [report] = chorus.to(REPORT)
    assert json.loads(report.content) == {"numeroFluxDepot": FLOW}


@pytest.mark.parametrize(
    "errors",
    [
        [{"numeroDP": "F-000042", "libelleErreurDP": "Le code service est inconnu"}],
        {"numeroDP": "F-000042", "libelleErreurDP": "Le code service est inconnu"},
    ],
)
async def test_a_rejected_flow_is_rejetee_with_its_first_error(
    chorus: Chorus, adapter: PisteChorusPro, errors: Any
) -> None:
    chorus.on(SEARCH, (200, {"codeRetour": 20002, "libelle": "aucune facture"}))
    chorus.on(REPORT, (200, _report("IN_REJETE", listeErreurDP=errors)))
    assert await adapter.status(FLOW, today=TODAY) == StatusReport(
        status=ChorusStatus.REJETEE, on=date(2026, 12, 3), reason="Le code service est inconnu"
    )


async def test_flow_rejections_without_details(chorus: Chorus, adapter: PisteChorusPro) -> None:
    chorus.on(SEARCH, (200, _found()))
    chorus.on(REPORT, (200, _report("IN_INCIDENTE", listeErreurDP=[])))
    report = await adapter.status(FLOW, today=TODAY)
    assert report.status is ChorusStatus.REJETEE
    assert report.reason is not None and "incident" in report.reason
    technical = [{"natureErreur": "TECHNIQUE", "codeErreur": "E1", "libelleErreur": "Fichier illisible"}]
    chorus.on(REPORT, (200, _report("IN_INTEGRE_PARTIEL", listeErreurTechnique=technical)))
    assert (await adapter.status(FLOW, today=TODAY)).reason == "Fichier illisible"


@pytest.mark.parametrize(
    "answer",
    [
        (200, {"codeRetour": 20001, "libelle": "POQ_MSG_01.003 - Flux introuvable."}),
        (200, _report("IN_INCONNU")),
        (503, b""),
        (200, b"{"),
    ],
)
async def test_an_unreadable_flow_report_is_unavailable(
    chorus: Chorus, adapter: PisteChorusPro, answer: tuple[int, Any]
) -> None:
    chorus.on(SEARCH, (200, _found()))
    chorus.on(REPORT, answer)
    with pytest.raises(ChorusUnavailable):
        await adapter.status(FLOW, today=TODAY)


async def test_no_secret_in_repr_nor_logs(
    chorus: Chorus, adapter: PisteChorusPro, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chorus.on(DEPOSIT, (200, DEPOSITED), (200, {"codeRetour": 20001, "libelle": "GDP_MSG_11.022"}))
    await adapter.deposit(SUBMISSION, today=TODAY)
    with pytest.raises(ChorusRefused):
        await adapter.deposit(SUBMISSION, today=TODAY)
    for secret in ("piste-s3cret", "p4ssw0rd-technique", ACCOUNT, "tok-1"):
        assert secret not in repr(adapter)
        assert secret not in caplog.text


def test_the_factory_names_the_missing_variables() -> None:
    incomplete = msgspec.structs.replace(SETTINGS, client_secret=None, password="")
    with pytest.raises(ValueError, match="BROKER_CHORUS_CLIENT_SECRET, BROKER_CHORUS_PASSWORD") as error:
        make_chorus(incomplete)
    assert "BROKER_CHORUS_LOGIN" not in str(error.value)


async def test_the_factory_builds_the_piste_adapter() -> None:
    chorus = make_chorus(SETTINGS)
    assert isinstance(chorus, PisteChorusPro)
    assert repr(chorus) == f"PisteChorusPro(api_url={API!r})"
    await chorus.aclose()
