/**
 * The mails tessera sends, each written once as a small document (paragraphs, one action link,
 * perhaps a code) and rendered from it into the text part and the HTML part, so the two parts
 * always say the same thing. An app replaces any of them with `templates` (see
 * {@link MailTemplates}).
 */

/** What every mail says about who sends it: from the configuration, never from a request. */
export interface MailBrand {
  /** The product's name in subjects, greetings and the footer. @default 'tessera' */
  productName: string
  /** The public URL (origin and optional path) every link starts with. */
  publicUrl: string
}

/** One block of a mail document. */
export type MailBlock =
  | { kind: 'paragraph'; text: string }
  /** The mail's action: a link shown as a button in HTML and on a line of its own in text. */
  | { kind: 'action'; label: string; url: string }
  /** A code the reader types: shown large in HTML and on a line of its own in text. */
  | { kind: 'code'; code: string }

/** A mail written once, rendered into both parts by {@link renderMail}. */
export interface MailDocument {
  subject: string
  blocks: readonly MailBlock[]
}

/** A rendered mail: subject, text part, HTML part. */
export interface MailContent {
  subject: string
  text: string
  html: string
}

/** Data of the password-reset mail. */
export interface PasswordResetMailData {
  email: string
  link: string
  minutes: number
}

/** Data of the address-verification mail. */
export interface VerificationMailData {
  email: string
  link: string
  hours: number
}

/** Data of the confirmation sent to the new address of an address change. */
export interface EmailChangeConfirmMailData {
  oldEmail: string
  newEmail: string
  link: string
  hours: number
}

/** Data of the notice sent to the old address of an address change. */
export interface EmailChangeNoticeMailData {
  oldEmail: string
  newEmail: string
  /** Opens the page where the owner of the old address says "this was not me". */
  reportLink: string
  days: number
}

/** Data of the one-time sign-in code mail. */
export interface SignInCodeMailData {
  email: string
  code: string
  /** Opens a page that signs in with the code after a button press. */
  link: string
  minutes: number
}

/**
 * One function per mail. Each returns a {@link MailDocument} (rendered into text and HTML by the
 * same renderer as the defaults) or a finished {@link MailContent} (both parts written by the
 * app). Links always come in `data`, built from the configured public URL.
 */
export interface MailTemplates {
  passwordReset(data: PasswordResetMailData, brand: MailBrand): MailDocument | MailContent
  emailVerification(data: VerificationMailData, brand: MailBrand): MailDocument | MailContent
  emailChangeConfirm(data: EmailChangeConfirmMailData, brand: MailBrand): MailDocument | MailContent
  emailChangeNotice(data: EmailChangeNoticeMailData, brand: MailBrand): MailDocument | MailContent
  signInCode(data: SignInCodeMailData, brand: MailBrand): MailDocument | MailContent
}

/** The name of one of the {@link MailTemplates}, as logs and metrics label a mail. */
export type MailKind = keyof MailTemplates

const plural = (count: number, unit: string): string => `${count} ${unit}${count === 1 ? '' : 's'}`

/** tessera's own wording of every mail. */
export const DEFAULT_MAIL_TEMPLATES: MailTemplates = {
  passwordReset: (data, brand) => ({
    subject: 'Reset your password',
    blocks: [
      {
        kind: 'paragraph',
        text: `Someone asked to reset the password of your ${brand.productName} account (${data.email}).`,
      },
      {
        kind: 'paragraph',
        text: `To choose a new password, open this link within ${plural(data.minutes, 'minute')}:`,
      },
      { kind: 'action', label: 'Choose a new password', url: data.link },
      {
        kind: 'paragraph',
        text: 'The link works once. If you did not ask for this, ignore this message: your password stays as it is.',
      },
    ],
  }),
  emailVerification: (data, brand) => ({
    subject: `Confirm your e-mail address for ${brand.productName}`,
    blocks: [
      {
        kind: 'paragraph',
        text: `Please confirm that ${data.email} is the address of your ${brand.productName} account.`,
      },
      { kind: 'action', label: 'Confirm the address', url: data.link },
      {
        kind: 'paragraph',
        text: `The link works for ${plural(data.hours, 'hour')}. If you did not create this account, ignore this message.`,
      },
    ],
  }),
  emailChangeConfirm: (data, brand) => ({
    subject: `Confirm your new e-mail address for ${brand.productName}`,
    blocks: [
      {
        kind: 'paragraph',
        text: `Someone asked to change the address of a ${brand.productName} account from ${data.oldEmail} to this address (${data.newEmail}).`,
      },
      {
        kind: 'paragraph',
        text: `The address changes only once you confirm it, within ${plural(data.hours, 'hour')}:`,
      },
      { kind: 'action', label: 'Confirm the new address', url: data.link },
      { kind: 'paragraph', text: 'If you did not ask for this, ignore this message.' },
    ],
  }),
  emailChangeNotice: (data, brand) => ({
    subject: `Your ${brand.productName} e-mail address is being changed`,
    blocks: [
      {
        kind: 'paragraph',
        text: `Someone signed in to your ${brand.productName} account (${data.oldEmail}) with its password and asked to change its address to ${data.newEmail}.`,
      },
      {
        kind: 'paragraph',
        text: `If this was you, there is nothing to do. If it was not, report it within ${plural(data.days, 'day')}: the change is cancelled (or undone), the address goes back to ${data.oldEmail}, and every session of the account is signed out.`,
      },
      { kind: 'action', label: 'This was not me', url: data.reportLink },
      {
        kind: 'paragraph',
        text: 'Then reset your password: whoever did this knows it.',
      },
    ],
  }),
  signInCode: (data, brand) => ({
    subject: `Your ${brand.productName} sign-in code`,
    blocks: [
      {
        kind: 'paragraph',
        text: `Use this code to sign in to ${brand.productName} as ${data.email}. It works once, for ${plural(data.minutes, 'minute')}:`,
      },
      { kind: 'code', code: data.code },
      { kind: 'paragraph', text: 'Or open this link in the browser you want to sign in with:' },
      { kind: 'action', label: 'Sign in', url: data.link },
      {
        kind: 'paragraph',
        text: 'If you did not ask for a code, ignore this message: nobody can sign in without it. Never tell the code to anyone.',
      },
    ],
  }),
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

// SECURITY: every value (addresses a user typed among them) is escaped in the HTML part, so an
// address cannot add markup or links to a mail.
function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c)
}

function isContent(value: MailDocument | MailContent): value is MailContent {
  return typeof (value as Partial<MailContent>).text === 'string'
}

/**
 * Renders a document into its text and HTML parts. The HTML has no images, no remote resources
 * and no scripts, and its links are exactly the document's: nothing tracks the reader.
 */
export function renderMail(document: MailDocument, brand: MailBrand): MailContent {
  const text: string[] = []
  const body: string[] = []
  for (const block of document.blocks) {
    switch (block.kind) {
      case 'paragraph':
        text.push(block.text)
        body.push(`<p style="margin:0 0 16px">${escape(block.text)}</p>`)
        break
      case 'action':
        text.push(block.url)
        body.push(
          `<p style="margin:0 0 16px"><a href="${escape(block.url)}" style="display:inline-block;padding:10px 18px;background:#1f4fd1;color:#ffffff;text-decoration:none;border-radius:4px">${escape(block.label)}</a></p>`,
          `<p style="margin:0 0 16px;font-size:13px;color:#555555">${escape(block.url)}</p>`,
        )
        break
      case 'code':
        text.push(block.code)
        body.push(
          `<p style="margin:0 0 16px;font-size:28px;letter-spacing:4px;font-family:monospace">${escape(block.code)}</p>`,
        )
        break
    }
  }
  const footer = `${brand.productName} · ${brand.publicUrl}`
  text.push('--', footer)
  const html = [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
    `<title>${escape(document.subject)}</title></head>`,
    '<body style="margin:0;padding:24px;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#222222;background:#ffffff">',
    '<div style="max-width:560px">',
    ...body,
    `<p style="margin:24px 0 0;font-size:12px;color:#777777">${escape(footer)}</p>`,
    '</div></body></html>',
    '',
  ].join('\n')
  return { subject: document.subject, text: `${text.join('\n\n')}\n`, html }
}

/**
 * The content of one mail: the app's template for `kind` when it gave one, else tessera's,
 * rendered with {@link renderMail} unless the template wrote both parts itself.
 */
export function composeMail<K extends MailKind>(
  templates: Partial<MailTemplates> | undefined,
  kind: K,
  data: Parameters<MailTemplates[K]>[0],
  brand: MailBrand,
): MailContent {
  const template = (templates?.[kind] ?? DEFAULT_MAIL_TEMPLATES[kind]) as (
    data: Parameters<MailTemplates[K]>[0],
    brand: MailBrand,
  ) => MailDocument | MailContent
  const written = template(data, brand)
  return isContent(written) ? written : renderMail(written, brand)
}
