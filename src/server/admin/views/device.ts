import Bowser from 'bowser'

const RAW_MAX = 80

function major(version: string | undefined): string {
  const first = version?.split('.')[0] ?? ''
  return /^[0-9]{1,4}$/.test(first) ? first : ''
}

function words(...parts: string[]): string {
  return parts.filter((part) => part !== '').join(' ')
}

/**
 * A person's name for the device behind a user agent, such as `Firefox 128 on Linux` or
 * `Safari 17 on iOS 17 (iPhone)`, read with bowser. A user agent bowser does not know (a
 * command-line client, a script) is shown as it is, cut to 80 characters; none gives `—`.
 * Never throws: a user agent is untrusted input.
 */
export function deviceName(userAgent: string | null | undefined): string {
  if (typeof userAgent !== 'string' || userAgent.trim() === '') return '—'
  let parsed: Bowser.Parser.ParsedResult
  try {
    parsed = Bowser.parse(userAgent)
  } catch {
    return userAgent.slice(0, RAW_MAX)
  }
  const browser = words(parsed.browser.name ?? '', major(parsed.browser.version))
  const os = words(parsed.os.name ?? '', parsed.os.versionName ?? major(parsed.os.version))
  const model = parsed.platform.model ?? ''
  if (browser === '') return userAgent.slice(0, RAW_MAX)
  const on = os === '' ? browser : `${browser} on ${os}`
  return model === '' ? on : `${on} (${model})`
}
