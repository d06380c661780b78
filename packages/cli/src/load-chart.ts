/**
 * The `--plot` chart of `fairkv plan`: per-device, per-layer decode time of each plan (the cost
 * model's `layerDeviceSeconds`), as a Vega-Lite heat map faceted by solver, rendered to SVG by Vega
 * without a browser. The contiguous plan is the "before", the other solvers the "after".
 *
 * @packageDocumentation
 */
import type { Plan } from '@fairkv/core';
import { layerDeviceSeconds, type PlacementRequest, resolvePlacementProblem } from '@fairkv/placement';

/** One cell of the heat map. */
export interface LoadCell {
  solver: string;
  device: number;
  layer: number;
  /** Milliseconds the device spends in the layer per decode step, at the plan's batch. */
  milliseconds: number;
}

/** The cells of every plan: `layerDeviceSeconds` of each (layer, device) at the plan's batch. */
export function loadCells(
  plans: { solver: string; plan: Plan; batch: number }[],
  request: PlacementRequest,
): LoadCell[] {
  const problem = resolvePlacementProblem(request);
  const cells: LoadCell[] = [];
  for (const { solver, plan, batch } of plans) {
    plan.layers.forEach((layer, layerIndex) => {
      layerDeviceSeconds(problem, layer, layerIndex, batch).forEach((seconds, device) => {
        cells.push({ solver, device, layer: layerIndex, milliseconds: seconds * 1e3 });
      });
    });
  }
  return cells;
}

/** The Vega-Lite specification of the heat map (one column per solver, shared colour scale). */
export function loadChartSpec(cells: LoadCell[], title: string, solverOrder: string[]): Record<string, unknown> {
  const layerCount = Math.max(1, ...cells.map((cell) => cell.layer + 1));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: 'per-device, per-layer decode time per step (cost model); darker is busier' },
    data: { values: cells },
    facet: { column: { field: 'solver', type: 'nominal', sort: solverOrder, title: null } },
    spec: {
      width: { step: 28 },
      height: { step: Math.max(4, Math.min(16, Math.floor(480 / layerCount))) },
      mark: { type: 'rect', tooltip: true },
      encoding: {
        x: { field: 'device', type: 'ordinal', title: 'device' },
        y: { field: 'layer', type: 'ordinal', title: 'layer', axis: { labelOverlap: 'greedy' } },
        color: {
          field: 'milliseconds',
          type: 'quantitative',
          title: 'ms / step',
          scale: { scheme: 'viridis', reverse: true },
        },
      },
    },
    resolve: { scale: { color: 'shared' } },
    config: { font: 'sans-serif' },
  };
}

/** Renders a Vega-Lite specification to an SVG string (vega's headless `renderer: 'none'` view). */
export async function renderSvg(spec: Record<string, unknown>): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = vegaLite.compile(spec as unknown as Parameters<typeof vegaLite.compile>[0]).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
