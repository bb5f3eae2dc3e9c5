/**
 * The report as Markdown: a domain table, a control table, and a section per control that says
 * what was observed before what was found.
 *
 * @module
 */
import type { EvidenceReport } from './index.js'
import { oneLine } from './util.js'

const cell = (text: string) => text.replace(/\|/g, '\\|')

/** Renders the report as Markdown. */
export function renderEvidenceMarkdown(report: EvidenceReport): string {
  const lines = [
    '# sluice control evidence',
    '',
    `Generated ${report.generatedAt} from \`${report.config ?? '(default config)'}\`.`,
    '',
    '| domain | status | controls |',
    '|---|---|---|',
    ...report.domains.map((d) => `| ${d.domain} | ${d.status} | ${d.controls.join(', ')} |`),
    '',
    '| id | domain | control | status |',
    '|---|---|---|---|',
    ...report.controls.map((c) => `| ${c.id} | ${c.domain} | ${cell(c.control)} | ${c.status} |`),
    '',
  ]
  for (const c of report.controls) {
    lines.push(
      `## ${c.id} ${c.domain}: ${c.status}`,
      '',
      c.control,
      '',
      `Observed: ${oneLine(c.observed)}.`,
      '',
      ...c.evidence.map((e) => `- ${oneLine(e)}`),
      '',
    )
  }
  return lines.join('\n')
}
