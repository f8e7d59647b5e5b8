"""The labelled near-duplicate set of ``bench/dedup_eval.py``, built at run time from the
real pages of ``../shared/corpus/pages`` (nothing from the corpus is written anywhere).

Roles of the pages (fixed rules, see ``build_dataset``): long-form pages are text pools
(aggregator commentary, follow-up hosts), pages with enough paragraphs are bases (the
original plus one syndicated variant per transformation form a true cluster), the rest
are stand-alone negatives. Deterministic for a seed.
"""

from __future__ import annotations

import glob
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "plugins"))

from newsflow.credit import normalise_agency, wire_credit  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "pages"
MIN_WORDS = 150
MIN_BLOCKS = 5
BLOCK_WORDS = 25  # short lines (headings, list items) are merged into blocks of >= this
POOL_WORDS = 2500  # pages longer than this are text pools, not bases
COMMENTARY_POOLS = ("laviedesidees.fr.evaluation.html", "pluralsight.com.python.html",
                    "ndr.de.podcastcoronavirus140.html")

# Same site or same topic: pairs inside a group are the "hard" negatives.
TOPICS = {
    "creative-commons": ["creativecommons.at.faircoin", "creativecommons.org",
                         "de.creativecommons.org.endlich", "fairkom.eu.about"],
    "chip.de": ["chip.de.beef", "chip.de.tests"],
    "dw.com": ["dw.com.colonial", "dw.com.uncork"],
    "software": ["blog.python.org", "caktusgroup.com.django", "gregoryszorc.com.python3",
                 "pluralsight.com.python", "stackoverflow.com.rust", "lemire.me.json",
                 "github.blog.spiceland", "en.wikipedia.org.tsne"],
    "law": ["internet-law.de.pseudonymen", "rechtambild.de.kochbuch",
            "telemedicus.info.rezension", "moritz-meyer.net.vreni",
            "netzpolitik.org.abmahnungen", "bmjv.de.konsum", "cnet.de.schutz",
            "viehbacher.com.steuerrecht"],
    "universities": ["psl.eu.luniversite", "sauvonsluniversite.com.spip",
                     "soundofscience.fr.1927", "laviedesidees.fr.evaluation",
                     "theguardian.com.academics", "franceculture.fr.idees"],
    "fashion-beauty": ["franziska-elea.de.vuitton", "majkaswelt.com.fashion",
                       "otto.de.twoforfashion", "iloveponysmag.com.barbour",
                       "lady50plus.de.sekre", "buchperlen.wordpress.com", "crazy-julia.de.tipps",
                       "incurvy.de.wellness", "modepilot.de.duschkopf", "gofeminin.de.abnehmen",
                       "brigitte.de.ikigai", "jolie.de.adele", "plentylife.blogspot.pamela-reif",
                       "novalanalove.com.ear-candy", "befifty.montauk"],
    "climate-nature": ["salon.com.emissions", "vancouversun.com.microsoft", "vice.com.amazon",
                       "theplanetarypress.com.forestlands", "nationalgeographic.co.uk.goats",
                       "simplyscience.ch.erdoel", "demokratiewebstatt.at.luft",
                       "heise.de.lithium", "nature.com.telescope", "phys.org.tool"],
    "transport": ["zeit.de.zugverkehr", "sueddeutsche.de.flixtrain", "futurezone.at.lyft",
                  "austria.info.radfahren", "adac.de.kindersitze"],
    "tech-media": ["meedia.de.freenet", "faz.net.streaming", "computerbase.de.htc",
                   "theverge.com.ios13", "threatpost.com.android", "kulu-media.com.meta-outage",
                   "basicthinking.de.tweets", "mixed.de.vrodo", "knowtechie.com.rally",
                   "pcgamer.com.skyrim", "spreeblick.com.habeck"],
    "german-politics": ["piratenpartei-mv.de.grundeinkommen", "die-partei.net.luebeck",
                        "cdu-fraktion-erfurt.de.waldorfschule", "gruen-digital.de.jahrestagung",
                        "correctiv.org.zusage", "brandenburg.de.homo-brandenburgensis",
                        "spiegel.de.albtraum"],
}
TOPIC_OF = {page: topic for topic, pages in TOPICS.items() for page in pages}

OUTLETS = [
    ("The Morning Ledger",
     "The Morning Ledger | World | Business | Markets | Opinion | Subscribe | Sign in",
     "© 2024 The Morning Ledger. All rights reserved. Sign up for our daily briefing and "
     "get the top stories delivered to your inbox every morning. Follow us on Facebook, "
     "X and Instagram."),
    ("Rheinblick Online",
     "Rheinblick Online – Nachrichten aus der Region | Politik | Wirtschaft | Sport | Kultur",
     "Alle Rechte vorbehalten. Vervielfältigung nur mit Genehmigung der Rheinblick Medien "
     "GmbH. Jetzt den Newsletter abonnieren und keine Nachricht mehr verpassen. Kommentare "
     "sind für diesen Artikel geschlossen."),
    ("Metro Wire Daily",
     "METRO WIRE DAILY — Breaking news, local coverage and analysis — Advertisement",
     "Metro Wire Daily may earn a commission from links on this page. Copyright Metro "
     "Wire Daily Media Group 2024. Read our privacy policy and terms of use. Got a news "
     "tip? Email the newsroom."),
    ("Le Courrier du Matin",
     "Le Courrier du Matin · Actualités · International · Économie · Abonnez-vous",
     "Tous droits de reproduction réservés. Le Courrier du Matin utilise des cookies pour "
     "améliorer votre expérience. Recevez chaque matin notre lettre d'information gratuite."),
    ("Pacific Herald",
     "Pacific Herald — News you can trust since 1887 — Home > News > World",
     "Related stories: see more from our world desk. Share this article on Facebook, "
     "Twitter, LinkedIn or by email. The Pacific Herald is a member of the Independent "
     "News Alliance and follows its code of practice."),
    ("Northside Gazette",
     "Northside Gazette | Local | National | Tech | Lifestyle | Podcasts | Newsletters",
     "This story was produced by the Northside Gazette newsroom. Support independent local "
     "journalism: become a member today for less than a coffee a week. Comments are "
     "moderated and may take a few minutes to appear."),
]
AGENCIES = [("Reuters", "-"), ("AP", "\u2014"), ("AFP", "-"), ("dpa", "-")]
CITIES = ["BERLIN", "LONDON", "WASHINGTON", "PARIS", "BRUSSELS", "VIENNA", "NEW YORK",
          "TOKYO", "MADRID", "ROME"]
MONTHS = ["Jan", "Feb", "March", "April", "May", "June", "July", "Aug", "Sept", "Oct",
          "Nov", "Dec"]
VIA_NAMES = ["Reuters", "NBC News", "Sunday Times", "AP", "BBC", "The Guardian", "AFP",
             "Bloomberg", "Der Spiegel", "Le Monde"]
HEADLINE_FORMS = ["{} – what we know so far", "Report: {}", "{} (UPDATED)", "Why {} matters",
                  "{}: the key points", "In brief: {}", "{} | Analysis"]
INTRO_NOTES = [
    "Editor's note: This article was first published by {agency} and is republished "
    "here as part of our content partnership. It has been lightly edited for style.",
    "Editor's note: This story is republished with permission from {agency}. Some "
    "details may have changed since it was first published.",
]
OUTRO_NOTES = [
    "Editor's note: An earlier version of this story misstated a detail in one of the "
    "paragraphs above. This version has been corrected. We regret the error.",
    "Correction appended: this article has been updated with additional information "
    "after publication. {agency} contributed to this report.",
]
TRANSFORMS = ["boilerplate", "headline", "dateline", "tail_trimmed", "paragraph_dropped",
              "paragraphs_swapped", "editor_note_intro", "editor_note_outro",
              "aggregator_excerpt", "aggregator_commentary", "combined"]


# ----------------------------------------------------------------------- dataset


@dataclass
class Page:
    name: str  # file name without .html
    title: str
    blocks: list[str]  # paragraph blocks (each >= BLOCK_WORDS words, or a short tail)
    plain: str = ""  # trafilatura's own output for the page, defaults (the shingle rule's view)

    @property
    def words(self) -> int:
        return sum(len(b.split()) for b in self.blocks)

    @property
    def topic(self) -> str:
        return TOPIC_OF.get(self.name, self.name)


@dataclass
class Item:
    item_id: int
    key: str  # sorts by publication time
    text: str
    cluster: str  # true cluster label
    kind: str  # original | variant | followup | negative
    transform: str  # which transformation (variants), else ""
    topic: str  # for hard-negative accounting
    base: str | None = None  # base page of a follow-up
    credit: str | None = None  # expected wire_credit where the generator put one
    page_credit: str | None = None  # credit the source page itself carries
    plain: str | None = None  # as trafilatura's defaults extract it, when not ``text``
    furniture: tuple[str, ...] = ()  # what an outlet template put around the article


def to_blocks(text: str) -> list[str]:
    """trafilatura lines -> paragraph blocks: short lines join the following lines."""
    blocks: list[str] = []
    pending: list[str] = []
    for line in (ln.strip() for ln in text.split("\n")):
        if not line:
            continue
        pending.append(line)
        if sum(len(p.split()) for p in pending) >= BLOCK_WORDS:
            blocks.append("\n".join(pending))
            pending = []
    if pending:
        if blocks:
            blocks[-1] = blocks[-1] + "\n" + "\n".join(pending)
        else:
            blocks.append("\n".join(pending))
    return blocks


def load_pages(corpus: Path, names: set[str] | None = None) -> list[Page]:
    """Extract every page (or only those whose file name without .html is in names), with
    the pipeline's own extraction (newsflow.extract.extract_html)."""
    from newsflow.config import Settings
    from newsflow.extract import extract_html

    max_bytes = Settings().max_extract_bytes
    pages = []
    for path in sorted(glob.glob(str(corpus / "*.html"))):
        if names is not None and os.path.basename(path)[: -len(".html")] not in names:
            continue
        with open(path, "rb") as handle:
            html = handle.read()
        doc = extract_html(html, None, max_bytes, search_date=False)
        if not doc.text:
            continue
        name = os.path.basename(path)[: -len(".html")]
        pages.append(Page(name=name, title=(doc.title or "").strip(), blocks=to_blocks(doc.text),
                          plain=trafilatura_text(html)))
    return pages


def trafilatura_text(html: bytes) -> str:
    """trafilatura's output with its defaults (comments included, as it ships)."""
    import trafilatura

    return trafilatura.extract(html) or ""


# --- page templates: the same article on outlets whose pages differ in furniture ---------

TEMPLATES = ["template_related", "template_read_more", "template_newsletter", "template_credits"]


def article_page(rng: random.Random, template: str, title: str | None, blocks: list[str],
                 outlet: str, headlines: list[str]) -> tuple[bytes, tuple[str, ...]]:
    """An outlet's HTML page for the article: navigation, the article element, and the
    furniture of ``template`` where publishers put it (inside the article element, where
    extraction keeps it unless told otherwise); and the furniture's texts."""
    from html import escape

    paragraphs = [f"<p>{escape(line)}</p>" for block in blocks for line in block.split("\n") if line.strip()]
    picks = rng.sample(headlines, 4)
    links = "".join(f"<li><a href='/{n}'>{escape(h)}</a></li>" for n, h in enumerate(picks))
    if template == "template_related":  # the case: a list right after the body
        paragraphs.append(f"<section class='box'><h2>{rng.choice(['Recommended for you', 'Related', 'More from ' + outlet, 'Most read'])}"
                          f"</h2><ul>{links}</ul></section>")
    elif template == "template_read_more":  # inline lines pointing elsewhere
        for n, headline in enumerate(picks[:2]):
            at = 1 + (n + 1) * len(paragraphs) // 3
            label = rng.choice(["READ MORE:", "Also read:", "Read more:", "Lesen Sie auch:"])
            paragraphs.insert(at, f"<p><strong>{label}</strong> <a href='/r{n}'>{escape(headline)}</a></p>")
    elif template == "template_newsletter":
        box = (f"<div class='newsletter-signup'><h3>Get the {escape(outlet)} briefing</h3><p>Sign up for our "
               "free morning newsletter: the five stories you need to know, every weekday.</p>"
               "<form><input type='email' placeholder='Your email'><button>Subscribe</button></form></div>")
        paragraphs.insert(len(paragraphs) // 2, box)
    elif template == "template_credits":  # image credit and share bar per outlet
        figure = (f"<figure><img src='/img.jpg'><figcaption>File photo. Photo: {escape(outlet)} / "
                  f"{rng.choice(['Getty Images', 'Reuters', 'AFP', 'dpa'])}</figcaption></figure>")
        paragraphs.insert(1, figure)
        paragraphs.append("<div class='share-tools'><h4>Share this</h4><ul><li><a href='/s1'>Facebook</a></li>"
                          "<li><a href='/s2'>X</a></li><li><a href='/s3'>Email</a></li></ul></div>")
    else:
        raise ValueError(template)
    furniture = {"template_related": tuple(picks), "template_read_more": tuple(picks[:2]),
                 "template_newsletter": (f"Get the {outlet} briefing", "free morning newsletter"),
                 "template_credits": (f"Photo: {outlet}", "Share this")}[template]
    nav = "".join(f"<li><a href='/{s}'>{s}</a></li>" for s in ("World", "Business", "Sport", "Opinion"))
    head = f"<title>{escape(title or '')}</title>"
    return (f"<html lang='en'><head>{head}</head><body><header><nav><ul>{nav}</ul></nav></header><main>"
            f"<article><h1>{escape(title or '')}</h1>{''.join(paragraphs)}</article></main>"
            f"<footer><p>© {escape(outlet)}</p></footer></body></html>").encode(), furniture


def pipeline_body(html: bytes, url: str) -> str:
    """The body the pipeline stores for a page (newsflow.extract.extract_page)."""
    from newsflow.config import Settings
    from newsflow.extract import extract_page
    from newsflow.models import ExtractJob

    return extract_page(ExtractJob(html, url, search_date=False), Settings(min_body_chars=0)).body or ""


def render(title: str | None, blocks: list[str], header: str | None = None,
           footer: str | None = None) -> str:
    parts = ([header] if header else []) + ([title] if title else []) + blocks + (
        [footer] if footer else [])
    return "\n\n".join(parts)


def dateline(rng: random.Random) -> tuple[str, str]:
    agency, dash = rng.choice(AGENCIES)
    place = f"{rng.choice(CITIES)}, {rng.choice(MONTHS)} {rng.randint(1, 28)}"
    return f"{place} ({agency}) {dash} ", agency


def rewrite_headline(rng: random.Random, title: str, blocks: list[str]) -> str:
    words = (title or blocks[0]).split()
    if len(words) > 4:
        start = rng.randint(0, max(0, len(words) - 4))
        words = words[start:start + rng.randint(3, 6)]
    return rng.choice(HEADLINE_FORMS).format(" ".join(words))


def trim_tail(rng: random.Random, blocks: list[str]) -> list[str]:
    total = sum(len(b.split()) for b in blocks)
    keep = round(total * (1 - rng.uniform(0.20, 0.30)))
    out, seen = [], 0
    for block in blocks:
        words = block.split()
        if seen + len(words) <= keep:
            out.append(block)
            seen += len(words)
            continue
        if keep - seen > 0:
            out.append(" ".join(words[: keep - seen]))
        break
    return out


class TextPool:
    """Disjoint word spans taken in order from a few pages (commentary)."""

    def __init__(self, pages: list[Page]):
        self.words = [w for p in pages for b in p.blocks for w in b.split()]
        self.pos = 0

    def take(self, n: int) -> str:
        if self.pos + n > len(self.words):
            raise RuntimeError("commentary pool exhausted")
        span = self.words[self.pos:self.pos + n]
        self.pos += n
        return " ".join(span)


def make_variant(rng: random.Random, transform: str, page: Page, has_dateline: bool,
                 line: str, agency: str, pool: TextPool,
                 page_credit: str | None) -> tuple[str, str, str | None]:
    """(text, transform name, expected wire credit) of one syndicated copy.

    Editor's notes credit the page's own agency when it has one (a Reuters story is
    not suddenly credited to AP), else the dateline's, else a random one."""
    title, blocks = page.title or None, list(page.blocks)
    first_plain = blocks[0]
    with_dl = [line + first_plain] + blocks[1:]
    body = with_dl if has_dateline else blocks
    credit = agency if has_dateline else None
    _outlet, header, footer = rng.choice(OUTLETS)
    if transform == "boilerplate":
        return render(title, body, header, footer), transform, credit
    if transform == "headline":
        return render(rewrite_headline(rng, page.title, blocks), body), transform, credit
    if transform == "dateline":
        if has_dateline:
            return render(title, blocks), "dateline_removed", None
        line2, agency2 = dateline(rng)
        return render(title, [line2 + first_plain] + blocks[1:]), "dateline_added", agency2
    if transform == "tail_trimmed":
        return render(title, trim_tail(rng, body)), transform, credit
    if transform == "paragraph_dropped":
        drop = rng.randrange(len(body))
        return render(title, body[:drop] + body[drop + 1:]), transform, (
            credit if drop else None)
    if transform == "paragraphs_swapped":
        i, j = sorted(rng.sample(range(len(body)), 2))
        swapped = list(body)
        swapped[i], swapped[j] = swapped[j], swapped[i]
        return render(title, swapped), transform, credit
    if transform == "editor_note_intro":  # the note credits the agency too
        note_agency = credit or page_credit or rng.choice(AGENCIES)[0]
        note = rng.choice(INTRO_NOTES).format(agency=note_agency)
        return render(title, [note] + body), transform, note_agency
    if transform == "editor_note_outro":
        note_agency = credit or page_credit or rng.choice(AGENCIES)[0]
        note = rng.choice(OUTRO_NOTES)
        return (render(title, body + [note.format(agency=note_agency)]), transform,
                note_agency if (credit or "{agency}" in note) else None)
    if transform == "aggregator_excerpt":
        k = rng.randint(3, min(5, len(blocks) - 1))
        start = rng.randrange(len(blocks) - k + 1)
        quoted = blocks[start:start + k]
        quoted_words = sum(len(b.split()) for b in quoted)
        n_comment = max(20, round(quoted_words * rng.uniform(0.25, 0.60)))
        comment = pool.take(n_comment).split()
        cut = round(len(comment) * 0.6)
        intro, outro = " ".join(comment[:cut]), " ".join(comment[cut:])
        names = rng.sample(VIA_NAMES, 3)
        via = f"Via {names[0]}, {names[1]} & {names[2]}"
        text = render(rewrite_headline(rng, page.title, blocks), [intro] + quoted + [outro, via])
        return text, transform, normalise_agency(names[0])
    if transform == "aggregator_commentary":  # more commentary than quotation, credited
        # consecutive blocks from a random start until 60-150 words are quoted (long
        # paragraphs cut at 150): the commentary pool is finite
        start = rng.randrange(len(blocks) - 1)
        quoted, quoted_words = [], 0
        for block in blocks[start:]:
            words = block.split()[:150 - quoted_words]
            quoted.append(" ".join(words))
            quoted_words += len(words)
            if quoted_words >= 60 and len(quoted) >= 2 or quoted_words >= 150:
                break
        comment = pool.take(max(30, round(quoted_words * rng.uniform(0.7, 1.3)))).split()
        cut = round(len(comment) * 0.6)
        intro, outro = " ".join(comment[:cut]), " ".join(comment[cut:])
        agency = page_credit or rng.choice(AGENCIES)[0]
        form = rng.randrange(3)
        if form == 0:
            quoted = [f"{rng.choice(CITIES)} ({agency}) - " + quoted[0]] + quoted[1:]
            tail = []
        elif form == 1:
            intro += f" Here is what happened, according to {agency}:"
            tail = []
        else:
            tail = [f"Via {agency}"]
        text = render(rewrite_headline(rng, page.title, blocks), [intro] + quoted + [outro] + tail)
        return text, transform, normalise_agency(agency)
    if transform == "combined":  # a typical outlet copy: several edits at once
        blocks2 = trim_tail(rng, blocks)
        if has_dateline:
            blocks2[0] = blocks2[0].removeprefix(line)
            credit = None
        else:
            line2, credit = dateline(rng)
            blocks2[0] = line2 + blocks2[0]
        if credit is None:
            credit = page_credit or rng.choice(AGENCIES)[0]
        note = rng.choice(INTRO_NOTES).format(agency=credit)
        text = render(rewrite_headline(rng, page.title, blocks), [note] + blocks2, header, footer)
        return text, transform, credit
    raise ValueError(transform)


def host_pieces(rng: random.Random, pages: list[Page]) -> list[tuple[Page, list[str]]]:
    """Cut pool pages into disjoint host articles of 150-300 words (whole blocks)."""
    pieces = []
    for page in pages:
        current: list[str] = []
        target = rng.randint(150, 300)
        for block in page.blocks:
            current.append(block)
            if sum(len(b.split()) for b in current) >= target:
                pieces.append((page, current))
                current, target = [], rng.randint(150, 300)
    return pieces


def build_dataset(pages: list[Page], seed: int) -> tuple[list[Item], dict]:
    usable = [p for p in pages if p.words >= MIN_WORDS]
    pools = [p for p in usable if p.words > POOL_WORDS]
    commentary_pages = [p for p in pools if p.name + ".html" in COMMENTARY_POOLS]
    host_pages = [p for p in pools if p.name + ".html" not in COMMENTARY_POOLS]
    bases = [p for p in usable if p.words <= POOL_WORDS and len(p.blocks) >= MIN_BLOCKS]
    singles = [p for p in usable if p.words <= POOL_WORDS and len(p.blocks) < MIN_BLOCKS]
    pool = TextPool(commentary_pages)
    hosts = host_pieces(random.Random(f"{seed}:hosts"), host_pages)
    random.Random(f"{seed}:order").shuffle(hosts)

    items: list[Item] = []
    week = 7 * 24 * 3600
    headlines = sorted({p.title for p in pages if p.title and len(p.title.split()) >= 3})

    def add(t: int, **kw) -> None:
        item_id = len(items)
        items.append(Item(item_id=item_id, key=f"{t:09d}:{item_id:05d}", **kw))

    for page in bases:
        prng = random.Random(f"{seed}:{page.name}")
        t0 = prng.randrange(week)
        has_dl = prng.random() < 0.5
        line, agency = dateline(prng)
        page_credit = wire_credit(render(page.title or None, page.blocks))
        body = ([line + page.blocks[0]] + page.blocks[1:]) if has_dl else page.blocks
        add(t0, text=render(page.title or None, body), cluster=page.name, kind="original",
            transform="", topic=page.topic, credit=agency if has_dl else None,
            page_credit=page_credit, plain=(line if has_dl else "") + page.plain)
        for transform in TRANSFORMS:
            if transform == "aggregator_commentary" and prng.random() < 0.5:
                continue  # for half of the bases: the commentary pool is finite
            text, name, credit = make_variant(prng, transform, page, has_dl, line, agency, pool,
                                              page_credit)
            add(t0 + prng.randint(60, 36000), text=text, cluster=page.name, kind="variant",
                transform=name, topic=page.topic, credit=credit, page_credit=page_credit)
        for template in TEMPLATES:  # the whole article on another outlet's page, extracted
            outlet = prng.choice(OUTLETS)[0]
            others = [h for h in headlines if h != page.title]  # other pages' headlines only
            html, furniture = article_page(prng, template, page.title or None, body, outlet, others)
            add(t0 + prng.randint(60, 36000), text=pipeline_body(html, f"https://{template}.test/{page.name}"),
                cluster=page.name, kind="variant", transform=template, topic=page.topic,
                credit=agency if has_dl else None, page_credit=page_credit, plain=trafilatura_text(html),
                furniture=furniture)
        # follow-up: a different article reusing ONE background paragraph of this base
        limit = min(150, 0.3 * page.words)
        reusable = [b for b in page.blocks if BLOCK_WORDS <= len(b.split()) <= limit]
        if hosts and reusable:
            host_page, host_blocks = hosts.pop()
            reused = prng.choice(reusable)
            at = prng.randint(1, len(host_blocks))
            outlet, header, footer = prng.choice(OUTLETS)
            # half of them from an agency, credited in a dateline: a credit alone must not
            # pull a follow-up into the story whose background paragraph it reuses
            credited = prng.random() < 0.5
            lead = [dateline(prng)[0] + host_blocks[0]] if credited else host_blocks[:1]
            blocks = lead + host_blocks[1:]
            text = render(None, blocks[:at] + [reused] + blocks[at:], header, footer)
            add(t0 + prng.randint(3600, 3 * 86400), text=text,
                cluster=f"followup:{page.name}", kind="followup",
                transform="followup_credited" if credited else "",
                topic=host_page.topic, base=page.name)
    # stand-alone negatives: unused host pieces and short-structured pages, dressed too
    nrng = random.Random(f"{seed}:negatives")
    for n, (host_page, host_blocks) in enumerate(hosts):
        _outlet, header, footer = nrng.choice(OUTLETS)
        add(nrng.randrange(week), text=render(None, host_blocks, header, footer),
            cluster=f"piece:{host_page.name}:{n}", kind="negative", transform="",
            topic=host_page.topic)
    for page in singles:
        _outlet, header, footer = nrng.choice(OUTLETS)
        add(nrng.randrange(week), text=render(page.title or None, page.blocks, header, footer),
            cluster=page.name, kind="negative", transform="", topic=page.topic)
    info = {"pages": len(pages), "usable": len(usable), "bases": len(bases),
            "host_pages": len(host_pages), "commentary_words_used": pool.pos,
            "singles": len(singles)}
    return items, info
