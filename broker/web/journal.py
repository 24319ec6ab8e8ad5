"""The audit log in sentences: « 3 déc. 2026 à 11 h 26 — Commune de Vitré (acheteur, clé fab_ab12…)
a créé la demande « Bureau France Services » ». Each stored action (``"<METHOD> <route template>"``)
has its verb, and a kind of action the page filters on; the CSV export holds the same rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

import msgspec

from broker.services.audit_journal import JournalEntry
from broker.web.labels import ROLE, paris

NBSP = "\u00a0"
SHORT_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")


class Verb(msgspec.Struct, frozen=True):
    """An action as a sentence says it: its kind, done (« a créé »), attempted (« créer ») and the
    object it names when the entry holds none (« une demande »)."""

    kind: str
    done: str
    attempt: str
    anything: str


#: The kinds of action, as the filter lists them.
KINDS = {
    "compte": "Connexions, organisations et clés",
    "demande": "Demandes et attributions",
    "devis": "Invitations et devis",
    "commande": "Commandes",
    "facture": "Factures",
    "crise": "Appels de crise et engagements",
    "atelier": "Ateliers",
    "integration": "Intégrations (catalogue, notifications, données essentielles)",
}


def _v(kind: str, done: str, attempt: str, anything: str) -> Verb:
    return Verb(kind, done, attempt, anything)


_CREATE_REQUEST = _v("demande", "a créé", "créer", "une demande")
_CANCEL_REQUEST = _v("demande", "a annulé", "annuler", "une demande")
_AWARD = _v("demande", "a attribué", "attribuer", "une demande")
_INVITE = _v("demande", "a invité un atelier sur", "inviter un atelier sur", "une demande")
_QUOTE = _v("devis", "a envoyé un devis sur", "envoyer un devis sur", "une demande")
_WITHDRAW = _v("devis", "a retiré son devis sur", "retirer son devis sur", "une demande")
_DECLINE_INVITATION = _v("devis", "a décliné l'invitation sur", "décliner l'invitation sur", "une demande")
_ORDER_STATUS = _v("commande", "a fait avancer", "faire avancer", "une commande")
_ORDER_PROGRESS = _v("commande", "a déclaré l'avancement de", "déclarer l'avancement de", "une commande")
_ISSUE = _v("facture", "a émis", "émettre", "une facture")
_CREDIT = _v("facture", "a établi un avoir sur", "établir un avoir sur", "une facture")
_DEPOSIT = _v("facture", "a déposé sur Chorus Pro", "déposer sur Chorus Pro", "une facture")
_CALL = _v("crise", "a lancé", "lancer", "un appel de crise")
_CLOSE_CALL = _v("crise", "a clôturé", "clôturer", "un appel de crise")
_POINTS = _v("crise", "a ajouté des points de livraison à", "ajouter des points de livraison à", "un appel de crise")
_ACCEPT = _v("crise", "a accepté un engagement sur", "accepter un engagement sur", "un appel de crise")
_REFUSE = _v("crise", "a décliné un engagement sur", "décliner un engagement sur", "un appel de crise")
_DELIVERED = _v("crise", "a déclaré l'avancement d'un engagement sur", "déclarer l'avancement d'un engagement sur",
                "un appel de crise")
_PROFILE = _v("atelier", "a mis à jour le profil de", "mettre à jour le profil de", "son atelier")
_CAPACITY = _v("atelier", "a déclaré une capacité de", "déclarer une capacité de", "son atelier")
_MACHINE = _v("atelier", "a ajouté", "ajouter", "une machine")
_VERIFY = _v("atelier", "a vérifié les labels et certifications de", "vérifier les labels et certifications de",
             "un atelier")
_CREATE_ORG = _v("compte", "a créé", "créer", "une organisation")
_CREATE_KEY = _v("compte", "a créé", "créer", "une clé")
_REVOKE_KEY = _v("compte", "a révoqué", "révoquer", "une clé")
_INVITE_PERSON = _v("compte", "a invité une personne dans", "inviter une personne dans", "une organisation")
_DISABLE_ACCOUNT = _v("compte", "a désactivé", "désactiver", "un compte")
_ENABLE_ACCOUNT = _v("compte", "a réactivé", "réactiver", "un compte")
_CHANGE_PASSWORD = _v("compte", "a changé son mot de passe", "changer son mot de passe", "")
_SIGN_IN = _v("compte", "a ouvert une session", "ouvrir une session", "")
_ACCEPT_INVITATION = _v("compte", "a accepté son invitation et choisi son mot de passe", "accepter une invitation", "")
_REQUEST_RESET = _v("compte", "a demandé un lien pour changer de mot de passe",
                    "demander un lien pour changer de mot de passe", "")
_RESET_PASSWORD = _v("compte", "a choisi un nouveau mot de passe", "choisir un nouveau mot de passe", "")

#: Every write of the API and of the pages, by its stored action.
_EDIT_MACHINE = _v("atelier", "a modifié", "modifier", "une machine")
_REMOVE_MACHINE = _v("atelier", "a retiré", "retirer", "une machine")
_REMOVE_CAPACITY = _v("atelier", "a retiré une capacité de", "retirer une capacité de", "son atelier")

VERBS: dict[str, Verb] = {
    "POST /app/atelier/machines/{machine_id}": _EDIT_MACHINE,
    "POST /app/atelier/machines/{machine_id}/retrait": _REMOVE_MACHINE,
    "POST /app/atelier/capacites/{slug}/retrait": _REMOVE_CAPACITY,
    "PUT /v1/workshops/me/machines/{machine_id}": _EDIT_MACHINE,
    "DELETE /v1/workshops/me/machines/{machine_id}": _REMOVE_MACHINE,
    "DELETE /v1/workshops/me/capacities/{slug}": _REMOVE_CAPACITY,
    # the pages
    "POST /app/connexion": _SIGN_IN,
    "POST /app/deconnexion": _v("compte", "a fermé sa session", "fermer sa session", ""),
    "POST /app/admin/organisations": _CREATE_ORG,
    "POST /app/admin/organisations/{org_id}/comptes": _INVITE_PERSON,
    "POST /app/invitation/{token}": _ACCEPT_INVITATION,
    "POST /app/mot-de-passe-oublie": _REQUEST_RESET,
    "POST /app/reinitialisation/{token}": _RESET_PASSWORD,
    "POST /app/notifications/lu": _v("compte", "a marqué ses notifications comme lues",
                                     "marquer ses notifications comme lues", ""),
    "POST /app/compte/mot-de-passe": _CHANGE_PASSWORD,
    "POST /app/admin/comptes/{account_id}/desactivation": _DISABLE_ACCOUNT,
    "POST /app/admin/comptes/{account_id}/reactivation": _ENABLE_ACCOUNT,
    # what the account pages store under their own action (they write without a request context)
    "account.signin": _SIGN_IN,
    "account.signin_failed": _SIGN_IN,
    "account.invitation_accepted": _ACCEPT_INVITATION,
    "account.reset_requested": _REQUEST_RESET,
    "account.password_reset": _RESET_PASSWORD,
    "account.password_changed": _CHANGE_PASSWORD,
    "account.password_change_failed": _CHANGE_PASSWORD,
    "POST /app/admin/organisations/{org_id}/cles": _CREATE_KEY,
    "POST /app/admin/cles/{key_id}/revocation": _REVOKE_KEY,
    "POST /app/admin/ateliers/{workshop_id}/verification": _VERIFY,
    "POST /app/atelier": _PROFILE,
    "POST /app/atelier/capacites": _CAPACITY,
    "POST /app/atelier/machines": _MACHINE,
    "POST /app/demandes/nouvelle": _CREATE_REQUEST,
    "POST /app/demandes/{request_id}/annulation": _CANCEL_REQUEST,
    "POST /app/demandes/{request_id}/ateliers": _INVITE,
    "POST /app/demandes/{request_id}/attribution": _AWARD,
    "POST /app/demandes/{request_id}/relance": _v("demande", "a relancé la recherche d'ateliers de",
                                                  "relancer la recherche d'ateliers de", "une demande"),
    "POST /app/invitations/{invitation_id}/devis": _QUOTE,
    "POST /app/invitations/{invitation_id}/refus": _DECLINE_INVITATION,
    "POST /app/consultations/{request_id}/devis": _QUOTE,
    "POST /app/devis/{quote_id}/retrait": _WITHDRAW,
    "POST /app/commandes/{order_id}/statut": _ORDER_STATUS,
    "POST /app/commandes/{order_id}/avancement": _ORDER_PROGRESS,
    "POST /app/commandes/{order_id}/factures": _ISSUE,
    "POST /app/commandes/{order_id}/factures/{invoice_id}/avoir": _CREDIT,
    "POST /app/commandes/{order_id}/factures/{invoice_id}/depot": _DEPOSIT,
    "POST /app/crises/nouvel-appel": _CALL,
    "POST /app/crises/{call_id}/cloture": _CLOSE_CALL,
    "POST /app/crises/{call_id}/points": _POINTS,
    "POST /app/engagements/{commitment_id}/acceptation": _ACCEPT,
    "POST /app/engagements/{commitment_id}/refus": _REFUSE,
    "POST /app/engagements/{commitment_id}/avancement": _DELIVERED,
    # the API
    "POST /v1/organizations": _CREATE_ORG,
    "PATCH /v1/organizations/{org_id}": _v("compte", "a modifié", "modifier", "une organisation"),
    "POST /v1/organizations/{org_id}/api-keys": _CREATE_KEY,
    "POST /v1/organizations/{org_id}/accounts": _INVITE_PERSON,
    "DELETE /v1/api-keys/{key_id}": _REVOKE_KEY,
    "POST /v1/accounts/{account_id}/disable": _DISABLE_ACCOUNT,
    "POST /v1/accounts/{account_id}/enable": _ENABLE_ACCOUNT,
    "PUT /v1/workshops/me": _PROFILE,
    "PUT /v1/workshops/me/capacities/{slug}": _CAPACITY,
    "POST /v1/workshops/me/machines": _MACHINE,
    "POST /v1/workshops/{workshop_id}/verification": _VERIFY,
    "POST /v1/catalogue": _v("integration", "a ajouté au catalogue", "ajouter au catalogue", "un article"),
    "POST /v1/requests": _CREATE_REQUEST,
    "POST /v1/requests/{request_id}/cancel": _CANCEL_REQUEST,
    "POST /v1/requests/{request_id}/invitations": _INVITE,
    "POST /v1/requests/{request_id}/award": _AWARD,
    "POST /v1/requests/{request_id}/quotes": _QUOTE,
    "POST /v1/invitations/{invitation_id}/decline": _DECLINE_INVITATION,
    "POST /v1/quotes/{quote_id}/withdraw": _WITHDRAW,
    "POST /v1/orders/{order_id}/transitions": _ORDER_STATUS,
    "POST /v1/orders/{order_id}/progress": _ORDER_PROGRESS,
    "POST /v1/orders/{order_id}/invoices": _ISSUE,
    "POST /v1/invoices/{invoice_id}/credit-notes": _CREDIT,
    "POST /v1/invoices/{invoice_id}/submit": _DEPOSIT,
    "POST /v1/crisis-calls": _CALL,
    "POST /v1/crisis-calls/{call_id}/cancel": _v("crise", "a annulé", "annuler", "un appel de crise"),
    "POST /v1/crisis-calls/{call_id}/close": _CLOSE_CALL,
    "POST /v1/crisis-calls/{call_id}/delivery-points": _POINTS,
    "PATCH /v1/crisis-calls/{call_id}/delivery-points/{point_id}": _v(
        "crise", "a augmenté la quantité d'un point de livraison de",
        "augmenter la quantité d'un point de livraison de", "un appel de crise"),
    "POST /v1/commitments/{commitment_id}/accept": _ACCEPT,
    "POST /v1/commitments/{commitment_id}/decline": _REFUSE,
    "POST /v1/commitments/{commitment_id}/progress": _DELIVERED,
    "POST /v1/decp/{record_id}/published": _v("integration", "a publié les données essentielles (DECP) d'",
                                              "publier les données essentielles (DECP) d'", "un marché"),
    "POST /v1/webhook-endpoints": _v("integration", "a créé", "créer", "un point de réception des notifications"),
    "POST /v1/webhook-endpoints/{endpoint_id}/enable": _v("integration", "a réactivé", "réactiver",
                                                          "un point de réception des notifications"),
    "POST /v1/webhook-endpoints/{endpoint_id}/recover": _v(
        "integration", "a renvoyé les notifications échouées d'", "renvoyer les notifications échouées d'",
        "un point de réception"),
    "POST /v1/webhook-endpoints/{endpoint_id}/secret:roll": _v(
        "integration", "a renouvelé le secret d'", "renouveler le secret d'", "un point de réception"),
    "POST /v1/webhook-deliveries/{delivery_id}/retry": _v("integration", "a relancé", "relancer",
                                                         "un envoi de notification"),
}

# The object of an entry by its type, with its name (« la demande « Bureau » »).
_NAMED = {
    "organization": "l'organisation «{nbsp}{name}{nbsp}»",
    "workshop": "l'atelier «{nbsp}{name}{nbsp}»",
    "request": "la demande «{nbsp}{name}{nbsp}»",
    "quote": "la demande «{nbsp}{name}{nbsp}»",  # a quote by its request (« a envoyé un devis sur … »)
    "invitation": "la demande «{nbsp}{name}{nbsp}»",
    "order": "la commande {name}",
    "invoice": "la facture {name}",
    "crisis_call": "l'appel «{nbsp}{name}{nbsp}»",
    "commitment": "l'appel «{nbsp}{name}{nbsp}»",
    "api_key": "la clé fab_{name}…",
    "catalogue_item": "l'article «{nbsp}{name}{nbsp}»",
}
#: Object types in French (the CSV's « Objet » column and an entry whose object has no name).
OBJECT_TYPE = {
    "organization": "organisation", "workshop": "atelier", "request": "demande", "quote": "devis",
    "invitation": "invitation", "order": "commande", "invoice": "facture", "crisis_call": "appel de crise",
    "commitment": "engagement", "api_key": "clé d'accès", "catalogue_item": "article du catalogue",
    "machine": "machine", "account": "compte", "decp_record": "données essentielles d'un marché",
    "webhook_endpoint": "point de réception des notifications", "webhook_delivery": "envoi de notification",
}
_ROLE_WORD = {"admin": "administration", "buyer": "acheteur", "maker": "atelier", "coordinator": "coordination",
              "integration": "intégration"}
_UNKNOWN = _v("", "a effectué une opération sur", "effectuer une opération sur", "la plateforme")


def when(at: datetime) -> str:
    """``3 déc. 2026 à 11 h 26`` (Paris time)."""
    local = paris(at)
    return f"{local.day} {SHORT_MONTHS[local.month - 1]} {local.year} à {local.hour} h {local.minute:02d}"


def key_start(prefix: str) -> str:
    """How a key begins, as its holder reads it (``fab_ab12cd34ef56…``; the secret never shows)."""
    return f"fab_{prefix}…"


def by_key(prefix: str | None) -> str:
    """``clé fab_ab12…``, or ``compte 1f0c2a9e…`` for a person signed in with their account."""
    if not prefix:
        return ""
    account = prefix.removeprefix("compte-")
    return f"compte {account}…" if account != prefix else f"clé {key_start(prefix)}"


def who(item: JournalEntry) -> str:
    """``Commune de Vitré (acheteur, clé fab_ab12…)``."""
    e = item.entry
    name = item.org_name or ("Une personne non connectée" if e.org_id is None else "Une organisation supprimée")
    details = [_ROLE_WORD.get(e.role, ROLE.get(e.role, e.role)) if e.role else "", by_key(e.key_prefix)]
    shown = ", ".join(d for d in details if d)
    return f"{name} ({shown})" if shown else name


def what(item: JournalEntry) -> str:
    """The object acted on, named (« la demande « Bureau France Services » »), or as the action says."""
    e = item.entry
    template = _NAMED.get(e.resource_type or "")
    if template and item.object_name:
        return template.format(name=item.object_name, nbsp=NBSP)
    verb = VERBS.get(e.action, _UNKNOWN)
    return verb.anything


def sentence(item: JournalEntry) -> str:
    """The entry as one sentence (its result included: « a tenté de … : refusé (422) »)."""
    e = item.entry
    verb = VERBS.get(e.action, _UNKNOWN)
    obj = what(item)
    joined = "" if not obj else (obj if verb.done.endswith("'") else " " + obj)
    if e.status_code < 400:
        return f"{when(e.at)} — {who(item)} {verb.done}{joined}."
    attempt = verb.attempt + ("" if not obj else (obj if verb.attempt.endswith("'") else " " + obj))
    return f"{when(e.at)} — {who(item)} a tenté de {attempt}{NBSP}: {result(e.status_code).lower()}."


def result(status: int) -> str:
    return f"Réussi ({status})" if status < 400 else f"Refusé ({status})"


def actions_of(kind: str) -> frozenset[str]:
    """The stored actions of one kind of action (the filter)."""
    return frozenset(action for action, verb in VERBS.items() if verb.kind == kind)


CSV_HEADERS = ("N°", "Date et heure", "Organisation", "Rôle", "Clé", "Type d'action", "Objet", "Résultat", "Entrée")


def csv_row(item: JournalEntry) -> tuple[str, ...]:
    e = item.entry
    verb = VERBS.get(e.action, _UNKNOWN)
    obj = OBJECT_TYPE.get(e.resource_type or "", "")
    if obj and item.object_name:
        obj = f"{obj} {item.object_name}"
    return (str(e.id), when(e.at), item.org_name or "", ROLE.get(e.role or "", e.role or ""),
            key_start(e.key_prefix) if e.key_prefix else "", KINDS.get(verb.kind, "Autre"), obj, result(e.status_code),
            sentence(item))


def to_csv(items: Iterable[JournalEntry]) -> bytes:
    """UTF-8 with a byte order mark (Excel then reads the accents), « ; » between fields (a French
    Excel's separator), French headers."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADERS)
    writer.writerows(csv_row(i) for i in items)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
