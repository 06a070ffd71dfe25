"""Street addresses in prose, as delivery, tax and shipping providers echo them ("ship to 221B
Baker Street, London NW1 6XE", "Hauptstraße 5, 10115 Berlin", "12 rue de la Paix, 75002 Paris").

The street line (house number and street) becomes ``[redacted]``; the city and country stay,
as ``mask_address`` keeps them, and a postal code written just after the street keeps its
district only (``NW1 ***``, ``10***``, ``94***``): enough to confirm the town with the customer,
not to find the door. A street needs its house number and a street word ("Street", "Pkwy",
"-straße", "rue", "Calle", ...): "Street Fighter 2", "Main menu" and "Suite 2 of tests" stay.

Run by ``scanners.TextScanner`` behind ``has_street_word`` and a ", " (a street is followed by
its town): substring checks only.
"""

from __future__ import annotations

import re

from redaction_rules.masks import REDACTED

# Street words as written before or inside a street name, for the pre-check: two searches
# for literal alternatives (three times cheaper, measured, than one substring check each).
_CASED_HINTS = ("St", "Ave", "Rd", "Road", "Pkwy", "Blvd", "Lane", "Ln", "Dr", "Way", "Ct",
                "Pl", "Terrace", "Court", "Hwy", "Sq", "Parkway", "Boulevard", "Close",
                "Crescent", "Row", "Mews", "Gardens", "Walk", "ST", "AVE", "RD", "ROAD", "BLVD",
                "LANE", "LN", "DR", "PKWY", "WAY", "CT", "PL", "HWY")  # fmt: skip
_LOWER_HINTS = ("stra", "str.", "weg", "gasse", "platz", "allee", "damm", "laan", "gracht",
                "plein", "kade", "rue ", "avenue ", "av. ", "bd ", "place ", "chemin ", "allée ",
                "impasse ", "quai ", "calle ", "avenida ", "via ", "viale ", "piazza ", "corso ",
                "rua ", "travessa ", "largo ", "paseo ", "plaza ", "carrer ")  # fmt: skip
_CASED_HINT = re.compile(" (?:" + "|".join(sorted(_CASED_HINTS, key=len, reverse=True)) + ")")
_LOWER_HINT = re.compile("|".join(map(re.escape, sorted(_LOWER_HINTS, key=len, reverse=True))))


def has_street_word(text: str, low: str) -> bool:
    """Whether ``text`` (``low`` lower-cased) holds a street word (the scanner's pre-check)."""
    return _CASED_HINT.search(text) is not None or _LOWER_HINT.search(low) is not None


_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’.\-]*"  # a capitalized word: Baker, O'Connell, Saint-Honoré
_NUMBER = r"\d{1,5}[A-Za-z]?(?:[ \t]?[-/][ \t]?\d{1,5}[A-Za-z]?)?"
# After a street: "Apt 4B", "Suite 200", "Flat 2", "#12".
_UNIT = r"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|#)\.?[ \t]*#?[\w\-]{1,6}\b)?"
# English: number, one to three capitalized words, a street word ("221B Baker Street",
# "1600 Amphitheatre Pkwy", "10 Downing St").
_ENGLISH = (
    rf"(?<![\w\-.,:/]){_NUMBER}[ \t]+(?:{_CAP}[ \t]+){{1,3}}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Parkway|Pkwy|Terrace"
    r"|Court|Ct|Place|Pl|Way|Close|Crescent|Square|Sq|Highway|Hwy|Row|Mews|Gardens|Walk"
    r"|STREET|ST|AVENUE|AVE|ROAD|RD|BLVD|LANE|LN|DRIVE|DR|PKWY|WAY|COURT|CT|PLACE|PL|HWY)"
    rf"\b\.?{_UNIT}"
)
# French, Spanish, Italian, Portuguese with the number first ("12 rue de la Paix").
_PARTICLE = r"(?:(?:de|du|des|la|le|les|del|della|di|do|da|dos|das|el)[ \t]+|[ld]['’])"
_LATIN_WORD = (
    r"(?:rue|avenue|av\.|boulevard|bd|place|chemin|all[ée]e|impasse|quai|calle|avenida"
    r"|via|viale|piazza|corso|rua|travessa|largo|paseo|plaza|carrer)"
)
_NUMBER_FIRST = (
    rf"(?<![\w\-.,:/])\d{{1,5}}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?i:{_LATIN_WORD})[ \t]+"
    rf"{_PARTICLE}*{_CAP}(?:[ \t]+{_PARTICLE}*{_CAP}){{0,3}}"
)
# The number last, before a comma or the end: "Calle Mayor 12", "Via Roma 15",
# "Hauptstraße 5", "Berliner Straße 12a", "Kerkstraat 12".
_NUMBER_LAST = (
    r"(?:(?:Calle|Avenida|Via|Viale|Piazza|Corso|Rua|Travessa|Largo|Paseo|Plaza|Carrer)"
    rf"[ \t]+{_PARTICLE}*{_CAP}(?:[ \t]+{_PARTICLE}*{_CAP}){{0,3}}"
    rf"|{_CAP}[ \t\-](?:Stra(?:ss|ß)e|Weg|Gasse|Platz|Allee|Damm)"
    r"|[A-ZÄÖÜ][\wäöüß'\-]*(?:stra(?:ss|ß)e|str\.|weg|gasse|platz|allee|damm|straat|laan"
    r"|gracht|plein|kade))"
    rf"[ \t]+{_NUMBER}(?=[ \t]*(?:[,;\n]|$))"
)
_STREET = re.compile(rf"{_ENGLISH}|{_NUMBER_FIRST}|(?<![\w\-]){_NUMBER_LAST}")
# A postal code in the rest of the address: UK ("NW1 6XE"), or 4-5 digits with a Dutch
# "1017 GM" or a ZIP+4 tail.
_POSTAL = re.compile(
    r"(?<![\w\-])(?:([A-Z]{1,2}\d[A-Z\d]?)[ ]?\d[A-Z]{2}|(\d\d)(\d{2,3})((?:[ ][A-Z]{2})"
    r"|-\d{4})?)(?![\w\-])"
)
_ADDRESS_END = re.compile(r"[\n;]|\.(?:\s|$)|$")


def _postal(match: re.Match[str]) -> str:
    if match.group(1) is not None:
        return match.group(1) + " ***"  # the outward code: a postal district
    tail = match.group(4) or ""
    return match.group(2) + "*" * len(match.group(3)) + tail[:1] + "*" * (len(tail) - 1)


def mask_addresses(text: str) -> str:
    """Street lines in prose as ``[redacted]``, the postal code after them cut to its district."""
    out: list[str] = []
    last = 0
    for match in _STREET.finditer(text):
        start, end = match.span()
        if start < last:
            continue
        out.append(text[last:start])
        out.append(REDACTED)
        # The rest of the address: up to 60 characters, the line's or sentence's end.
        stop = _ADDRESS_END.search(text, end, end + 60)
        limit = stop.start() if stop is not None else min(len(text), end + 60)
        postal = _POSTAL.search(text, end, limit)
        if postal is not None:
            out.append(text[end : postal.start()])
            out.append(_postal(postal))
            last = postal.end()
        else:
            last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


# A postal code after the word for it ("postcode SW1A 2AA", "ZIP 94043-1234", "PLZ 10115"):
# cut to its district like one after a street.
_NAMED_POSTAL = re.compile(
    r"(?<![\w\-])((?i:post(?:al)?[ \t]?code|zip(?:[ \t]?code)?|plz|postleitzahl"
    r"|code[ \t]postal|c[oó]digo[ \t]postal|cap))[ \t]*[:=#]?[ \t]*"
)


def mask_named_postal_codes(text: str) -> str:
    """Postal codes after their word, cut to the district (``postcode SW1A ***``)."""
    out: list[str] = []
    last = 0
    for word in _NAMED_POSTAL.finditer(text):
        start = word.end()
        postal = _POSTAL.match(text, start)
        if postal is None or start < last:
            continue
        out.append(text[last:start])
        out.append(_postal(postal))
        last = postal.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)
