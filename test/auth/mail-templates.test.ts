import { describe, expect, it } from 'vitest'
import { createMailDelivery, type MailOutcome } from '../../src/auth/mail-delivery.js'
import {
  composeMail,
  DEFAULT_MAIL_TEMPLATES,
  renderMail,
  type MailBrand,
} from '../../src/auth/mail-templates.js'
import type { MailMessage } from '../../src/auth/mailer.js'

const brand: MailBrand = { productName: 'Acme', publicUrl: 'https://auth.acme.test' }

describe('mail templates', () => {
  it('renders one document into a text and an HTML part that say the same thing', () => {
    const link = 'https://auth.acme.test/verify-email?token=abc'
    const mail = composeMail(
      undefined,
      'emailVerification',
      { email: 'a@x.io', link, hours: 24 },
      brand,
    )
    expect(mail.subject).toBe('Confirm your e-mail address for Acme')
    expect(mail.text).toContain(`\n\n${link}\n\n`)
    expect(mail.text).toContain('Acme · https://auth.acme.test')
    expect(mail.html).toContain(`href="${link}"`)
    expect(mail.html).toContain('Acme · https://auth.acme.test')
    for (const sentence of ['Please confirm that a@x.io is the address', 'works for 24 hours']) {
      expect(mail.text).toContain(sentence)
      expect(mail.html).toContain(sentence)
    }
    expect(mail.html).not.toMatch(/<img|<script|src=/i)
  })

  it('escapes every value in the HTML part', () => {
    const mail = renderMail(
      {
        subject: 'x',
        blocks: [
          { kind: 'paragraph', text: '<b onclick="x">"a"@x.io</b>' },
          { kind: 'action', label: 'Go', url: 'https://a.test/?a=1&b="2"' },
        ],
      },
      brand,
    )
    expect(mail.html).not.toContain('<b onclick')
    expect(mail.html).toContain('&lt;b onclick=&quot;x&quot;&gt;')
    expect(mail.html).toContain('href="https://a.test/?a=1&amp;b=&quot;2&quot;"')
  })

  it('an app overrides one template (a document or both parts); the others stay', () => {
    const templates = {
      signInCode: (data: { code: string }) => ({
        subject: 'Your code',
        blocks: [{ kind: 'code' as const, code: data.code }],
      }),
      passwordReset: () => ({ subject: 'Reset', text: 'plain\n', html: '<p>rich</p>' }),
    }
    const code = composeMail(
      templates,
      'signInCode',
      { email: 'a@x.io', code: '12345678', link: 'https://x', minutes: 10 },
      brand,
    )
    expect(code.subject).toBe('Your code')
    expect(code.text).toContain('12345678')
    expect(code.html).toContain('12345678')
    expect(
      composeMail(templates, 'passwordReset', { email: 'a', link: 'l', minutes: 1 }, brand),
    ).toEqual({ subject: 'Reset', text: 'plain\n', html: '<p>rich</p>' })
    expect(
      composeMail(
        templates,
        'emailChangeNotice',
        {
          oldEmail: 'a@x.io',
          newEmail: 'b@x.io',
          reportLink: 'https://r',
          days: 7,
        },
        brand,
      ).subject,
    ).toBe(
      renderMail(
        DEFAULT_MAIL_TEMPLATES.emailChangeNotice(
          {
            oldEmail: 'a@x.io',
            newEmail: 'b@x.io',
            reportLink: 'https://r',
            days: 7,
          },
          brand,
        ) as never,
        brand,
      ).subject,
    )
  })
})

describe('mail delivery', () => {
  const message: MailMessage = { to: 'a@x.io', subject: 's', text: 't' }

  it('tries a bounded number of times and reports the loss once', async () => {
    const outcomes: MailOutcome[] = []
    let tries = 0
    const delivery = createMailDelivery({
      // A deliberately broken transport (a fault test): every send fails.
      mailer: {
        send: () => {
          tries += 1
          return Promise.reject(new Error('relay down'))
        },
      },
      attempts: 3,
      retryDelaysMs: [0],
      onOutcome: (o) => outcomes.push(o),
    })
    expect(await delivery.send('passwordReset', message)).toBe(false)
    expect(tries).toBe(3)
    expect(outcomes).toMatchObject([{ kind: 'passwordReset', outcome: 'failed', attempts: 3 }])
  })

  it('defers work off the caller: nothing runs before the call returns', async () => {
    const sent: MailMessage[] = []
    const delivery = createMailDelivery({
      mailer: { send: (m) => Promise.resolve(void sent.push(m)) },
    })
    delivery.defer(async () => {
      await delivery.send('x', message)
    })
    expect(sent).toHaveLength(0)
    await delivery.idle()
    expect(sent).toHaveLength(1)
  })

  it('refuses bad options at setup', () => {
    const mailer = { send: () => Promise.resolve() }
    expect(() => createMailDelivery({ mailer, attempts: 0 })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
    expect(() => createMailDelivery({ mailer, retryDelaysMs: [-1] })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    )
  })
})
