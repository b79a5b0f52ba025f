// Reads from the server the board is served by: same origin, so the Content-Security-Policy
// `default-src 'self'` allows them and nothing else.

export class NotAvailable extends Error {}

export async function json<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  if (response.status === 404 || response.status === 405) throw new NotAvailable(path);
  if (!response.ok) throw new Error(`${response.status} ${path}`);
  return (await response.json()) as T;
}

export async function text(path: string): Promise<string> {
  const response = await fetch(path);
  if (!response.ok) throw new Error(`${response.status} ${path}`);
  return response.text();
}

export interface LogHead {
  size: number;
  head_hash: string;
  log_origin: string;
  server_key: string;
  verifier_key: string;
  admin_keys: string[];
}

export interface Tally {
  poll: number;
  status: string;
  counts: number[];
  turnout: number;
  superseded_ballots: number;
  leading_options: number[];
  is_final: boolean;
  log_size: number;
}

export interface Poll {
  id: number;
  title: string;
  description: string;
  options: string[];
  audience: { kind: string; districts?: string[] };
  opens_at: string;
  closes_at: string;
  tally_visibility: string;
  status: string;
  closed_at_position?: number | null;
  anonymous?: unknown;
}

export interface Receipt {
  position: number;
  entry_hash: string;
  leaf_hash: string;
  tree_size: number;
  checkpoint: string;
  inclusion_proof: string[];
}
