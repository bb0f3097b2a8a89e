/*
 * The shared parts of every admin page: the stylesheet, the document shell (also used by the
 * server's /reset page), the header bar with the navigation, flash messages, POST forms with
 * their CSRF field, the pager, badges and the time formats.
 */
import type { User } from '../../../auth/accounts.js'
import { html, trustedHtml, type HtmlValue, type SafeHtml } from '../html.js'

/** A message shown once at the top of a page: done, refused, or a neutral notice. */
export interface Flash {
  kind: 'ok' | 'error' | 'info'
  text: string
}

/** What every page needs from the request. */
export interface PageContext {
  /** Mount path of the panel, e.g. `/admin`. */
  base: string
  /** CSP nonce of this response (for the one `<style>` element). */
  nonce: string
  /** CSRF token for the forms of this page. */
  csrf: string
  /** The signed-in administrator, or null on the sign-in and setup pages. */
  admin: User | null
  flash?: Flash | undefined
}

const CSS = `
:root{color-scheme:light dark;--fg:#1d1f23;--bg:#fafafa;--muted:#5b6270;--line:#d5d8de;--accent:#1f5fbf;--ok:#1d6b35;--okbg:#e5f4ea;--err:#a4221b;--errbg:#fbe9e7;--card:#fff}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaee;--bg:#15171b;--muted:#a3aab6;--line:#363a42;--accent:#7fb0ff;--ok:#8fd6a4;--okbg:#16301f;--err:#ffaaa3;--errbg:#3a1a17;--card:#1d2026}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.6rem 1rem;border-bottom:1px solid var(--line);background:var(--card)}
header .brand{font-weight:700;margin-right:auto}
nav{display:flex;flex-wrap:wrap;gap:.25rem .9rem}
nav a{color:var(--accent);text-decoration:none}
nav a[aria-current=page]{font-weight:700;text-decoration:underline}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
h3{font-size:.95rem;margin:0 0 .4rem}
a{color:var(--accent)}
.flash{padding:.6rem .8rem;border-radius:6px;margin:0 0 1rem;border:1px solid}
.flash.ok{color:var(--ok);background:var(--okbg)}
.flash.error{color:var(--err);background:var(--errbg)}
.flash.info{color:var(--fg);background:var(--card);border-color:var(--line)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:1rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem}
.card .n{font-size:2rem;font-weight:700}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:8px;background:var(--card)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.85rem;color:var(--muted);font-weight:600}
tr:last-child td{border-bottom:0}

code{font-size:.9em}
form{margin:0}
form.stack{display:grid;gap:.6rem;max-width:28rem}
form.inline{display:inline-flex;flex-wrap:wrap;gap:.4rem;align-items:center}
label{display:grid;gap:.2rem;font-weight:600}
label.check{display:flex;gap:.4rem;align-items:center;font-weight:400}
input[type=text],input[type=email],input[type=password],input[type=search],select,textarea{font:inherit;padding:.45rem .5rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg);width:100%}
textarea{min-height:6rem}
button{font:inherit;padding:.4rem .8rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
@media (prefers-color-scheme:dark){button{color:#10131a}}
button.secondary{background:transparent;color:var(--accent)}
button.danger{background:var(--err);border-color:var(--err)}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:0 .4rem;border-radius:4px;font-size:.8rem;border:1px solid var(--line)}
.badge.on{color:var(--ok);border-color:var(--ok)}
.badge.off{color:var(--err);border-color:var(--err)}
.pager{display:flex;gap:1rem;align-items:center;margin:.6rem 0}
.toolbar{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin:.5rem 0 1rem}
.toolbar label{font-weight:400}
details{margin:.5rem 0}
summary{cursor:pointer;color:var(--accent)}
.narrow{max-width:26rem;margin:3rem auto}
form.stack button{justify-self:start}
td.wrap{overflow-wrap:anywhere}
.email{overflow-wrap:break-word;min-width:0}
.rules{font-weight:400;font-size:.9rem;color:var(--muted)}
.chart{width:100%;height:auto;display:block}
.chart .bar-ok{fill:var(--accent)}
.chart .bar-fail{fill:var(--err)}
.chart .axis{stroke:var(--line)}
.chart .hit{fill:transparent}
.chart text{fill:var(--muted);font-size:13px}
.legend{display:flex;gap:1rem;font-size:.85rem;color:var(--muted);margin:.3rem 0 0}
.legend .key-ok::before,.legend .key-fail::before{content:"";display:inline-block;width:.7rem;height:.7rem;margin-right:.3rem;border-radius:2px;vertical-align:-.05rem}
.legend .key-ok::before{background:var(--accent)}
.legend .key-fail::before{background:var(--err)}
@media (max-width:40rem){main{padding:.6rem}th,td{padding:.4rem}h1{font-size:1.3rem}
table.list thead{display:none}
table.list tr{display:block;border-bottom:1px solid var(--line);padding:.3rem 0}
table.list tr:last-child{border-bottom:0}
table.list td{display:flex;gap:.6rem;border:0;padding:.2rem .6rem}
table.list td[data-label]::before{content:attr(data-label);flex:0 0 6.5rem;color:var(--muted);font-size:.85rem;font-weight:600}
table.list td[data-label=""]::before{display:none}
table.list td>*{min-width:0}}
`

const NAV: ReadonlyArray<readonly [string, string]> = [
  ['/', 'Dashboard'],
  ['/users', 'Users'],
  ['/sessions', 'Sessions'],
  ['/groups', 'Groups & permissions'],
  ['/audit', 'Audit log'],
  ['/keys', 'Signing keys'],
  ['/mfa', 'Second factor'],
]

/** Formats epoch milliseconds as `2026-11-23 06:40 UTC`. */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—'
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
}

/** A short age such as `3 d`, `5 h`, `12 min`. */
export function formatAge(ms: number | null | undefined, now: number): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—'
  const seconds = Math.max(0, Math.round((now - ms) / 1000))
  if (seconds < 60) return `${seconds} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h`
  return `${Math.floor(seconds / 86_400)} d`
}

/** The hidden CSRF field of a form. */
export function csrfField(page: PageContext): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${page.csrf}" />`
}

/** A POST form with the CSRF field; `body` holds the other fields and the button. */
export function postForm(
  page: PageContext,
  action: string,
  body: HtmlValue,
  options: { className?: string } = {},
): SafeHtml {
  return html`<form
    method="post"
    action="${page.base}${action}"
    class="${options.className ?? 'inline'}"
  >
    ${csrfField(page)}${body}
  </form>`
}

/** What {@link documentShell} wraps around a page's content. */
export interface DocumentShell {
  /** CSP nonce of this response, for the one `<style>` element. */
  nonce: string
  /** The `<title>`, in full. */
  title: string
  /** The name at the left of the header bar. */
  brand: string
  /** The `<meta name="referrer">` policy; say the same in the `Referrer-Policy` header. */
  referrer: 'same-origin' | 'strict-origin' | 'no-referrer'
  /** The page icon, if any (an `img-src` the CSP allows). */
  iconHref?: string | undefined
  /** What follows the brand in the header bar (navigation, the signed-in user). */
  header?: HtmlValue
  content: HtmlValue
}

/**
 * The whole HTML document: head with the one nonce-carrying stylesheet, the header bar, and
 * `main` around the content. The admin panel's pages and the server's public pages (`/reset`)
 * share it, so they look alike and neither needs a script.
 */
export function documentShell(shell: DocumentShell): SafeHtml {
  const icon =
    shell.iconHref === undefined
      ? ''
      : html`<link rel="icon" href="${shell.iconHref}" type="image/svg+xml" />`
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="${shell.referrer}" />
        ${icon}
        <title>${shell.title}</title>
        <style nonce="${shell.nonce}">
          ${trustedHtml(CSS)}
        </style>
      </head>
      <body>
        <header><span class="brand">${shell.brand}</span>${shell.header}</header>
        <main>${shell.content}</main>
      </body>
    </html> `
}

/** The whole document around a page's content. */
export function layout(
  page: PageContext,
  title: string,
  content: HtmlValue,
  options: { current?: string } = {},
): SafeHtml {
  const nav =
    page.admin === null
      ? ''
      : html`<nav aria-label="Admin sections">
            ${NAV.map(
              ([path, label]) =>
                html`<a
                  href="${page.base}${path === '/' ? '' : path}"
                  ${options.current === path ? trustedHtml(' aria-current="page"') : ''}
                  >${label}</a
                >`,
            )}
          </nav>
          <span class="muted">${emailText(page.admin.email)}</span>
          ${postForm(page, '/logout', html`<button class="secondary" type="submit">Sign out</button>`)}`
  const flash =
    page.flash === undefined
      ? ''
      : html`<p class="flash ${page.flash.kind}" role="status">${page.flash.text}</p>`
  return documentShell({
    nonce: page.nonce,
    title: `${title} · tessera admin`,
    brand: 'tessera admin',
    referrer: 'same-origin',
    iconHref: `${page.base}/favicon.svg`,
    header: nav,
    content: html`${flash} ${content}`,
  })
}

/** A page with a heading and a sentence: errors, refusals, dead links. */
export function messagePage(page: PageContext, title: string, text: string): SafeHtml {
  const back =
    page.admin === null
      ? html`<p><a href="${page.base}/login">Sign in</a></p>`
      : html`<p><a href="${page.base}">Back to the dashboard</a></p>`
  return layout(
    page,
    title,
    html`<h1>${title}</h1>
      <p>${text}</p>
      ${back}`,
  )
}

/** An on/off badge. */
export function yesNo(value: boolean, yes: string, no: string): SafeHtml {
  return value
    ? html`<span class="badge on">${yes}</span>`
    : html`<span class="badge off">${no}</span>`
}

/** Previous / next links of a paged list; empty `params` values are left out of the links. */
export function pager(
  page: PageContext,
  path: string,
  params: Record<string, string>,
  current: number,
  hasNext: boolean,
): SafeHtml {
  const link = (n: number): string => {
    const query = new URLSearchParams({ ...params, page: String(n) })
    for (const [key, value] of [...query.entries()]) if (value === '') query.delete(key)
    return `${page.base}${path}?${query.toString()}`
  }
  return html`<div class="pager">
    ${current > 1 ? html`<a href="${link(current - 1)}" rel="prev">← Previous</a>` : ''}<span
      class="muted"
      >Page ${current}</span
    >${hasNext ? html`<a href="${link(current + 1)}" rel="next">Next →</a>` : ''}
  </div>`
}

/** `1 session`, `2 sessions`: a count with its noun, singular for one. */
export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`
}

/**
 * An e-mail address that a narrow column may wrap only before an `@` or a `.` (a `<wbr>` there),
 * never in the middle of a word; an unbroken part longer than the line still wraps rather than
 * overflowing (the `email` class).
 */
export function emailText(email: string): SafeHtml {
  const pieces = email
    .split(/(?=[@.])/)
    .map((part, index) => (index === 0 ? part : html`<wbr />${part}`))
  return html`<span class="email">${pieces}</span>`
}

/** What the forms that set a password say about it, from the configured policy. */
export interface PasswordRules {
  minLength: number
  maxLength: number
  /** The common-password list applies. */
  commonList: boolean
  /** The strength estimator's lowest accepted score (0: off). @default 0 */
  minStrength?: number
}

/**
 * The sentences under a new-password field, e.g. "12 to 128 characters, not a common password.
 * Hard to guess: four or more unrelated words work well."
 */
export function passwordRulesText(rules: PasswordRules): string {
  const length = `${rules.minLength} to ${rules.maxLength} characters${rules.commonList ? ', not a common password' : ''}.`
  return (rules.minStrength ?? 0) > 0
    ? `${length} Hard to guess: four or more unrelated words work well.`
    : length
}
