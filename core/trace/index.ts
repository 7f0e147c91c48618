export {
  TRACE_OFF, TRACE_CONTROL, TRACE_DEVICES, traceCreate, traceCanonicalLine, traceHash,
  traceEnter, traceExit, traceEvent, traceSpan, traceRecordsSince,
} from './trace.ts';
export type { TraceLevel, TraceKind, TraceArgs, TraceRecord, TraceState, TraceConfig, Traced } from './trace.ts';
export { exportJsonLines, exportCallTree, exportChromeTrace } from './export.ts';
