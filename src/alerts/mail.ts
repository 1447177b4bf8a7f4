/** E-mail over SMTP: the only `nodemailer` import, loaded with the first mail (a CSS without alerts never does). */
import type { Transporter } from 'nodemailer'

export interface Mail {
  from: string
  to: string[]
  subject: string
  text: string
}

export interface Mailer {
  send: (m: Mail) => Promise<void>
  close: () => void
}

/**
 * `smtpUrl`: smtp://[user:pass@]host:port (STARTTLS when the server offers it) or smtps:// (TLS
 * from the start).
 */
export function smtpMailer (smtpUrl: string, timeoutMs: number): Mailer {
  const url = new URL(smtpUrl)
  url.searchParams.set('connectionTimeout', String(timeoutMs))
  url.searchParams.set('greetingTimeout', String(timeoutMs))
  url.searchParams.set('socketTimeout', String(timeoutMs))
  let transport: Transporter | undefined
  let closed = false
  return {
    send: async (m) => {
      if (transport === undefined) {
        const made = (await import('nodemailer')).default.createTransport(url.toString())
        if (closed) made.close()
        transport ??= made
      }
      await transport.sendMail({ from: m.from, to: m.to.join(', '), subject: m.subject, text: m.text })
    },
    close: () => {
      closed = true
      transport?.close()
    }
  }
}
