/**
 * Progress lines on stderr for a long step that would otherwise be silent (export-gguf writes a bench
 * model for many seconds): at most one line every `everyMs`, plus the last one, so a fast run prints
 * almost nothing and a slow one shows it is alive.
 */
export function progressLines(label: string, unit: string, everyMs = 2000): (done: number, total: number) => void {
  let last = performance.now();
  let printed = false;
  return (done, total) => {
    const now = performance.now();
    if (now - last < everyMs && !(done === total && printed)) return;
    last = now;
    printed = true;
    process.stderr.write(`${label}: ${done}/${total} ${unit} (${Math.round((100 * done) / total)}%)\n`);
  };
}
