/*
 * The dashboard's sign-in chart: bars of successful and failed sign-ins per hour or per day,
 * drawn as inline SVG on the server. No script and no style attribute (the CSP allows neither):
 * colours come from the page's one stylesheet through classes, tooltips from SVG <title>.
 */
import { html, type SafeHtml } from '../html.js'
import { plural } from './layout.js'

/** One bar pair: sign-ins and failures in `[start, start + bucket)`. */
export interface ChartBucket {
  /** Epoch ms of the bucket's start. */
  start: number
  success: number
  failure: number
}

/** What {@link loginChart} draws. */
export interface LoginChart {
  /** An id unique on the page (for the accessible title and description). */
  id: string
  /** The chart's title, e.g. `Last 24 hours`. */
  title: string
  /** Oldest first. */
  buckets: readonly ChartBucket[]
  /** The name of one bucket in its tooltip, e.g. `14:00–15:00 UTC`. */
  describe(start: number): string
  /** The axis label under a bucket, or `''` for none. */
  label(start: number, index: number): string
}

const WIDTH = 600
const HEIGHT = 170
const LEFT = 34
const RIGHT = 6
const TOP = 8
const BOTTOM = 22

/** The smallest of 1, 2, 5, 10, 20, 50, ... that is at least `value` (and at least 1). */
export function niceCeiling(value: number): number {
  let step = 1
  for (;;) {
    for (const factor of [1, 2, 5]) {
      if (step * factor >= value) return step * factor
    }
    step *= 10
  }
}

function fixed(value: number): string {
  return value.toFixed(1)
}

/** Sign-ins and failures as an SVG bar chart, with totals in its accessible description. */
export function loginChart(chart: LoginChart): SafeHtml {
  const top = niceCeiling(Math.max(1, ...chart.buckets.map((b) => Math.max(b.success, b.failure))))
  const plotWidth = WIDTH - LEFT - RIGHT
  const plotHeight = HEIGHT - TOP - BOTTOM
  const slot = plotWidth / Math.max(1, chart.buckets.length)
  const barWidth = Math.min(slot * 0.38, 22)
  const y = (value: number): number => TOP + plotHeight - (value / top) * plotHeight
  const totals = chart.buckets.reduce(
    (sum, b) => ({ success: sum.success + b.success, failure: sum.failure + b.failure }),
    { success: 0, failure: 0 },
  )
  const bars = chart.buckets.map((bucket, index) => {
    const x = LEFT + index * slot + (slot - 2 * barWidth) / 2
    const label = chart.label(bucket.start, index)
    const bar = (value: number, offset: number, kind: string): SafeHtml | '' =>
      value === 0
        ? ''
        : html`<rect
            class="${kind}"
            x="${fixed(x + offset)}"
            y="${fixed(y(value))}"
            width="${fixed(barWidth)}"
            height="${fixed(y(0) - y(value))}"
          />`
    return html`<g>
      <title>
        ${chart.describe(bucket.start)}: ${plural(bucket.success, 'sign-in')},
        ${plural(bucket.failure, 'failure')}
      </title>
      <rect
        class="hit"
        x="${fixed(LEFT + index * slot)}"
        y="${TOP}"
        width="${fixed(slot)}"
        height="${plotHeight}"
      />
      ${bar(bucket.success, 0, 'bar-ok')} ${bar(bucket.failure, barWidth, 'bar-fail')}
      ${
        label === ''
          ? ''
          : html`<text
              x="${fixed(LEFT + index * slot + slot / 2)}"
              y="${HEIGHT - 6}"
              text-anchor="middle"
              >${label}</text
            >`
      }
    </g>`
  })
  // Whole numbers only: a count has no halves.
  const ticks = top >= 2 && top % 2 === 0 ? [0, top / 2, top] : [0, top]
  const grid = ticks.map(
    (value) =>
      html`<line
          class="axis"
          x1="${LEFT}"
          x2="${WIDTH - RIGHT}"
          y1="${fixed(y(value))}"
          y2="${fixed(y(value))}"
        />
        <text x="${LEFT - 6}" y="${fixed(y(value) + 4)}" text-anchor="end">${value}</text>`,
  )
  return html`<svg
    class="chart"
    viewBox="0 0 ${WIDTH} ${HEIGHT}"
    role="img"
    aria-labelledby="${chart.id}-title ${chart.id}-desc"
    id="${chart.id}"
  >
    <title id="${chart.id}-title">${chart.title}</title>
    <desc id="${chart.id}-desc">
      ${plural(totals.success, 'sign-in')} and ${plural(totals.failure, 'failure')}.
    </desc>
    ${grid} ${bars}
  </svg>`
}
