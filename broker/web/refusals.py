"""The services' refusals in French: one sentence per stable ``code`` of a `BrokerError`, with the
figures the error carries (``exc.figures``), never read from the English ``detail``.

A page never shows the English detail: a code this table does not know is said by the error's class
(`_BY_CLASS`). ``tests/unit/web/test_french_map.py`` fails when a code raised by the services, the
domain, the database rules or the adapters has no entry here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from broker.errors import BrokerError, Conflict, Forbidden, NotFound, Rejected, UpstreamUnavailable
from broker.web.labels import (
    CERTIFICATION,
    INVOICE_STATUS,
    ORDER_STATUS,
    ORG_KIND,
    QUOTE_STATUS,
    REQUEST_STATUS,
    ROLE,
    label,
    number,
    readable,
)

NBSP = "\u00a0"

#: The service wrote this code's detail in French, with its figures (issue 17): shown as a sentence.
DETAIL: Final = "detail"

_SIRET = {
    "a SIRET is exactly 14 digits": "Un SIRET compte exactement 14 chiffres.",
    "the SIREN part (first 9 digits) fails its Luhn check": (
        "Ce SIRET n'est pas valide : le SIREN (9 premiers chiffres) ne passe pas la clé de contrôle."
    ),
    "this La Poste SIRET fails its checksum": "Ce SIRET de La Poste ne passe pas sa clé de contrôle.",
    "the SIRET fails its Luhn check": "Ce SIRET n'est pas valide : il ne passe pas la clé de contrôle (Luhn).",
}

# What has a status, as a sentence names it, and its statuses' words.
_CALL_STATUS = {"open": "Ouvert", "closed": "Clos", "cancelled": "Annulé"}
_COMMITMENT_STATUS = {"proposed": "Proposé", "accepted": "Accepté", "declined": "Décliné", "expired": "Expiré",
                      "cancelled": "Annulé", "completed": "Terminé"}
_INVITATION_STATUS = {"invited": "En attente de réponse", "declined": "Déclinée"}
_NOUNS: dict[str, tuple[str, Mapping[str, str]]] = {
    "request": ("La demande", REQUEST_STATUS),
    "order": ("La commande", ORDER_STATUS),
    "quote": ("Le devis", QUOTE_STATUS),
    "invitation": ("L'invitation", _INVITATION_STATUS),
    "invoice": ("La facture", INVOICE_STATUS),
    "crisis call": ("L'appel", _CALL_STATUS),
    "commitment": ("L'engagement", _COMMITMENT_STATUS),
}


def french_siret(problem: str) -> str:
    """A SIRET's problem (`broker.domain.identifiers.siret_problem`) in French."""
    return _SIRET.get(problem, "Ce SIRET n'est pas valide.")


def _figure(value: object) -> str:
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return number(value)
    return str(value)


def _units(exc: BrokerError, name: str) -> str:
    return _figure(exc.figures.get(name, "?"))


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def _transition(exc: BrokerError) -> str:
    noun, statuses = _NOUNS.get(str(exc.figures.get("noun", "")), ("", {}))
    current = str(exc.figures.get("current", ""))
    if not noun or not current:
        return "Cette étape n'est pas possible dans l'état actuel : rechargez la page pour voir où en est l'objet."
    words = label(dict(statuses), current)
    words = words[:1].lower() + words[1:]  # « en cours de dépôt sur Chorus Pro », proper nouns kept
    return f"{noun} est «{NBSP}{words}{NBSP}» : cette étape n'est plus possible."


def _siret(exc: BrokerError) -> str:
    return french_siret(str(exc.figures.get("problem", "")))


def _note(exc: BrokerError) -> str:
    what = "l'annulation" if exc.figures.get("target") == "cancelled" else "le litige"
    return f"Expliquez la raison de {what} : l'autre partie la lira."


def _min_quotes(exc: BrokerError) -> str:
    if "received" in exc.figures and "required" in exc.figures:
        counted = f"{_units(exc, 'received')} devis reçu(s) sur les {_units(exc, 'required')} attendus"
    else:
        counted = "Le nombre de devis attendu n'est pas atteint"
    return f"{counted} alors que la période de devis est encore ouverte : attendez sa clôture, ou justifiez " \
           "l'attribution."


def _chorus(exc: BrokerError) -> str:
    missing = {"service": "un code service", "engagement": "un numéro d'engagement"}.get(
        str(exc.figures.get("missing")), "un code service ou un numéro d'engagement")
    return f"La structure Chorus Pro de l'acheteur exige {missing}."


def _no_workshop(exc: BrokerError) -> str:
    needs = ", ".join(label(CERTIFICATION, c) for c in _strings(exc.figures.get("certifications")))
    what = f" et les certifications vérifiées ({needs})" if needs else ""
    return (f"Aucun atelier à portée des points de livraison ne sait fabriquer «{NBSP}{_units(exc, 'item')}{NBSP}» "
            f"({_units(exc, 'considered')} ateliers inscrits) : il faut les procédés, les matériaux, la taille de "
            f"pièce{what} de l'article. Élargissez la distance maximale ou ajoutez un point de livraison.")


def _undeclared(exc: BrokerError) -> str:
    items = _strings(exc.figures.get("undeclared"))
    return "Non déclaré par l'atelier : " + ", ".join(readable(i) for i in items) + "."


def _role(exc: BrokerError) -> str:
    kind, role = str(exc.figures.get("kind", "")), str(exc.figures.get("role", ""))
    if not kind:
        return "Ce type d'organisation ne peut pas recevoir une clé de ce rôle."
    return (f"Une organisation de type «{NBSP}{label(ORG_KIND, kind)}{NBSP}» ne peut pas recevoir une clé "
            f"«{NBSP}{label(ROLE, role)}{NBSP}».")


def _not_eligible(exc: BrokerError) -> str:
    reasons = exc.extensions.get("reasons")
    messages = [readable(str(r.get("message", ""))) for r in reasons if isinstance(r, dict)] \
        if isinstance(reasons, list) else []
    if not messages:
        return "Cet atelier ne remplit pas les conditions de la demande."
    return f"Cet atelier ne remplit pas les conditions de la demande{NBSP}: " + f"{NBSP}; ".join(messages) + "."


def _mapa_window(exc: BrokerError) -> str:
    if exc.pointer == "/deadline":
        return (f"Une procédure adaptée laisse au moins 7{NBSP}jours pour répondre{NBSP}: la date limite de "
                f"livraison doit tomber plus de 7{NBSP}jours après aujourd'hui.")
    return (f"Une procédure adaptée laisse au moins 7{NBSP}jours pour répondre{NBSP}: portez la durée de la "
            f"consultation à 168{NBSP}heures au moins.")


Sentence = str | Callable[[BrokerError], str]

#: Every code a page may show, and its sentence: a template over ``exc.figures`` (``{quantity}``), a
#: function of the error, or `DETAIL` (the service's own French).
REFUSALS: dict[str, Sentence] = {
    # the classes' own codes (broker.errors)
    "broker-error": "Le service a refusé cette opération.",
    "not-found": "Introuvable (ou réservé à une autre organisation).",
    "conflict": "Une modification faite au même moment empêche cette opération : rechargez la page et recommencez.",
    "invalid-state-transition": _transition,
    "validation-error": "Cette valeur n'est pas acceptée : vérifiez la saisie.",
    "forbidden": "Votre rôle ne permet pas cette opération.",
    "upstream-unavailable": "Un service dont dépend la plateforme ne répond pas : rien n'a été enregistré, "
                            "réessayez dans un instant.",
    # organisations, keys, workshops
    "siret-taken": "Une organisation avec ce SIRET existe déjà.",
    "siret-invalid": _siret,
    "iban-invalid": "Cet IBAN n'est pas valide : vérifiez-le sur le RIB (FR76 suivi de 23 caractères).",
    "commune-unknown": "«{NBSP}{commune}{NBSP}» n'est pas un code de commune française.",
    "role-not-allowed": _role,
    "workshop-profile-missing": "Décrivez d'abord votre atelier (page « Mon atelier »).",
    "not-a-workshop": "Seule une organisation de type manufacture a un profil d'atelier.",
    "workshop-not-found": "Cet atelier n'existe pas (ou plus).",
    "not-declared": _undeclared,
    "slug-taken": "Un article du catalogue porte déjà cet identifiant.",
    # people's accounts (the password's problem is written in French by the service)
    "account-exists": "Cette adresse a déjà un compte.",
    "link-unusable": "Ce lien n'est plus utilisable (inconnu, expiré ou déjà utilisé) : demandez-en un nouveau.",
    "weak-password": DETAIL,
    "wrong-password": "Le mot de passe actuel n'est pas le bon.",
    "account-changed": "Le compte a changé entre-temps (mot de passe changé ailleurs ou compte désactivé) : "
                       "reconnectez-vous.",
    "own-account": "Vous ne pouvez pas désactiver votre propre compte : un autre administrateur peut le faire.",
    "catalogue-item-unknown": "L'article «{NBSP}{item}{NBSP}» n'est pas au catalogue.",
    # requests, procedure, consultations
    "deadline-past": "La date limite doit être dans le futur.",
    "item-required": "Choisissez un article du catalogue, ou décrivez les étapes de fabrication de la pièce.",
    "chorus-reference-missing": _chorus,
    "cpv-required": f"Indiquez le code CPV de l'achat{NBSP}: 8{NBSP}chiffres, un tiret et le chiffre de contrôle "
                    "(par exemple 39130000-2).",
    "cpv-invalid": DETAIL,
    "estimate-required": f"Indiquez la valeur estimée du besoin (ou, à défaut, un budget){NBSP}: la procédure en "
                         "dépend.",
    "procedure-formalisee": DETAIL,
    "procedure-unknown-date": DETAIL,
    "mapa-window-too-short": _mapa_window,
    "publicity-reference-required": f"À partir de 90\u202f000{NBSP}€ HT, une procédure adaptée exige un avis au "
                                    f"BOAMP ou dans un journal d'annonces légales (article R.2131-12){NBSP}: "
                                    "indiquez la référence de cet avis.",
    "match-pending": f"Le rapprochement des ateliers de cette demande n'est pas encore terminé{NBSP}: réessayez "
                     "dans un instant.",
    "not-eligible": _not_eligible,
    "already-invited": DETAIL,
    "decp-published-on-invalid": DETAIL,
    # invitations, quotes, award
    "invitation-closed": "Cette invitation est close (déclinée).",
    "quote-window-closed": "La période de remise des devis est close pour cette demande.",
    "quote-exists": "Votre atelier a déjà un devis en cours sur cette demande ; retirez-le d'abord.",
    "quantity-over-requested": "La quantité proposée ({quantity}) dépasse les {requested} unités demandées.",
    "split-not-allowed": "Cette demande ne peut pas être fractionnée : proposez les {requested} unités.",
    "delivery-date-past": "La date de livraison est déjà passée.",
    "validity-past": "La date de validité doit être dans le futur.",
    "quote-listed-twice": "Un devis est sélectionné deux fois.",
    "quote-not-of-request": "Ce devis n'appartient pas à cette demande.",
    "award-not-whole": "Cette demande ne peut pas être fractionnée : retenez un seul devis, pour la quantité totale.",
    "award-over-quantity": "Les devis retenus totalisent {total} unités, plus que les {requested} demandées.",
    "quote-not-valid": "Ce devis ne peut plus être retenu (retiré, expiré ou déjà traité).",
    "capacity-exhausted": "L'atelier n'a plus la capacité nécessaire d'ici l'échéance.",
    "not-awardable": "Seule une demande ayant reçu des devis peut être attribuée.",
    "justification-required": "Justifiez ce choix pour attribuer ce devis (la règle est expliquée ci-dessus).",
    "rotation-justification-required": "Justifiez le choix de cet atelier pour l'attribuer (la règle est expliquée "
                                       "ci-dessus).",
    "min-quotes-not-met": _min_quotes,
    # orders
    "transition-not-yours": "Cette étape revient à l'autre partie de la commande.",
    "tracking-required": "Indiquez la référence de suivi (transporteur et numéro) pour expédier.",
    "note-required": _note,
    "units-over-ordered": "{done} unités, c'est plus que les {ordered} commandées.",
    "progress-backwards": "L'avancement ne recule pas : {reported} unités sont déjà déclarées.",
    "concurrent-update": "L'objet a changé entre-temps : rechargez la page et recommencez.",
    # invoices
    "not-delivered": f"La facture suit le service fait{NBSP}: attendez que l'acheteur confirme la réception.",
    "already-invoiced": f"Toutes les unités de la commande sont déjà facturées{NBSP}; un avoir en rend à facturer.",
    "already-credited": "Cette facture est déjà entièrement annulée par avoir.",
    "not-the-seller": "Seul l'atelier de la commande émet, dépose et corrige ses factures.",
    "not-an-invoice": "Un avoir corrige une facture, pas un autre avoir.",
    "quantity-over-uninvoiced": "{quantity} unités, c'est plus que les {remaining} unités restant à facturer.",
    "quantity-over-uncredited": "{quantity} unités, c'est plus que les {remaining} unités de la facture non "
                                "encore annulées.",
    "credit-reason-required": "Indiquez le motif de l'avoir.",
    # crisis calls and commitments
    "no-workshop-in-reach": _no_workshop,
    "delivery-point-required": "Un appel compte au moins un point de livraison.",
    "delivery-point-label-required": "Nommez le point de livraison (par exemple « CHU de Rennes, Pontchaillou »).",
    "delivery-point-twice": "Le point de livraison «{NBSP}{label}{NBSP}» figure déjà dans l'appel.",
    "quantity-out-of-range": "La quantité va de 1 à {high} unités.",
    "priority-out-of-range": "La priorité va de 1 (la plus urgente) à 5.",
    "quantity-not-raised": "La quantité ne peut qu'augmenter : elle est de {current} unités.",
    "produced-over-committed": "{produced} unités fabriquées, c'est plus que les {committed} unités engagées.",
    "delivered-over-produced": "{delivered} unités livrées, c'est plus que les {produced} unités fabriquées.",
    "crisis-call-closed": "Cet appel est clos : il ne change plus.",
    "crisis-call-accepted": "Des ateliers ont déjà accepté des engagements de cet appel : il ne peut plus être "
                            "annulé. Clôturez-le à la place.",
    "commitment-expired": "Cette proposition a expiré : ses unités sont proposées à d'autres ateliers.",
    "delivery-point-full": "Ce point de livraison a déjà toutes ses unités promises par des engagements acceptés.",
    # webhooks and notifications (integrations; an administrator may meet them)
    "endpoint-disabled": "Ce point de réception est désactivé : réactivez-le d'abord.",
    "delivery-pending": "Cet envoi n'a pas encore été tenté.",
    "webhook-url-unsafe": "Cette adresse de réception n'est pas autorisée (adresse interne ou non chiffrée).",
    "webhook-secret-invalid": "Ce secret de signature n'est pas valide.",
    "webhook-id-invalid": "Cet identifiant de message n'est pas valide.",
    "webhook-timestamp-invalid": "Cet horodatage n'est pas valide.",
    "smtp-unavailable": "Le serveur de messagerie ne répond pas : le message n'est pas parti, réessayez plus tard.",
}

# A code missing from the table (a new one) is said by its class, never in English.
_BY_CLASS: tuple[tuple[type[BrokerError], str], ...] = (
    (NotFound, "not-found"),
    (Conflict, "conflict"),
    (Rejected, "validation-error"),
    (Forbidden, "forbidden"),
    (UpstreamUnavailable, "upstream-unavailable"),
    (BrokerError, "broker-error"),
)


class _Figures(dict[str, str]):
    """The figures of a template; one the error lacks reads « ? » rather than failing the page."""

    def __missing__(self, key: str) -> str:
        return "?"


def sentence(text: str) -> str:
    """A service's French detail as a sentence: capital first letter, final full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def french(exc: BrokerError) -> str:
    """The refusal as a page says it."""
    entry = REFUSALS.get(exc.code)
    if entry is None:
        entry = REFUSALS[next(code for cls, code in _BY_CLASS if isinstance(exc, cls))]
    if entry == DETAIL:
        return sentence(exc.detail)
    if callable(entry):
        return entry(exc)
    return entry.format_map(_Figures({"NBSP": NBSP, **{k: _figure(v) for k, v in exc.figures.items()}}))
