// Check: the browser verifies a receipt itself, step by step, under the log key shown on the
// page. Each step is run and shown on its own, so a failure names the step that failed.
import { json, type LogHead, type Receipt } from "../api";
import { h } from "../dom";
import { t, type Key } from "../i18n";
import { currentCheckpoint } from "../gossip";
import { fromBase64, parseCheckpoint, parseVerifierKey, signedBy, verifyConsistency, verifyInclusion, type LogKey } from "../verify";

type Step = "signature" | "inclusion" | "consistency";

async function runStep(step: Step, receipt: Receipt, key: LogKey): Promise<boolean> {
  const checkpoint = parseCheckpoint(receipt.checkpoint);
  if (step === "signature") return signedBy(checkpoint, key) && checkpoint.size === BigInt(receipt.tree_size);
  if (step === "inclusion") {
    const proof = receipt.inclusion_proof.map(fromBase64);
    return verifyInclusion(BigInt(receipt.position), checkpoint.size, fromBase64(receipt.leaf_hash), proof, checkpoint.root);
  }
  const now = await currentCheckpoint(key);
  if (now === null || now.size < checkpoint.size) return false;
  if (now.size === checkpoint.size) return verifyConsistency(now.size, now.size, checkpoint.root, now.root, []);
  const answer = await json<{ proof: string[] }>(`/v1/log/proofs/consistency?from=${checkpoint.size}&to=${now.size}`);
  return verifyConsistency(checkpoint.size, now.size, checkpoint.root, now.root, answer.proof.map(fromBase64));
}

const steps: [Step, Key][] = [
  ["signature", "step_signature"],
  ["inclusion", "step_inclusion"],
  ["consistency", "step_consistency"],
];

async function check(receipt: Receipt, key: LogKey, out: HTMLElement): Promise<void> {
  const list = h("ol", { class: "steps", "data-testid": "steps" });
  const failures: string[] = [];
  for (const [step, label] of steps) {
    let passed = false;
    try {
      passed = await runStep(step, receipt, key);
    } catch {
      passed = false;
    }
    if (!passed) failures.push(t(label));
    list.append(h("li", { "data-step": step, "data-status": passed ? "passed" : "failed", class: passed ? "passed" : "failed" }, h("span", { class: "mark", "aria-hidden": "true" }, passed ? "✓" : "✗"), ` ${t(label)}: ${passed ? t("passed") : t("failed_step")}`));
  }
  const verdict = failures.length ? t("check_failed", failures.join(", ")) : t("check_ok");
  out.replaceChildren(list, h("p", { role: "status", "data-testid": "verdict", class: failures.length ? "failed" : "passed" }, verdict));
}

function parseReceipt(text: string): Receipt {
  const value = JSON.parse(text) as Receipt;
  if (typeof value.position !== "number" || typeof value.checkpoint !== "string" || !Array.isArray(value.inclusion_proof)) throw new Error("position, checkpoint, inclusion_proof");
  return value;
}

export async function checkPage(main: HTMLElement): Promise<void> {
  const head = await json<LogHead>("/v1/log");
  const key = parseVerifierKey(head.verifier_key);
  const area = h("textarea", { id: "receipt", rows: 8, "data-testid": "receipt-input", placeholder: t("drop_here") }) as HTMLTextAreaElement;
  const position = h("input", { id: "position", type: "number", min: 0, inputmode: "numeric", "data-testid": "position-input" }) as HTMLInputElement;
  const out = h("div", { "aria-live": "polite", "data-testid": "check-result" });
  const run = async (event: Event): Promise<void> => {
    event.preventDefault();
    out.replaceChildren(t("loading"));
    try {
      const receipt = area.value.trim() ? parseReceipt(area.value) : await json<Receipt>(`/v1/receipts/${Number(position.value)}`);
      if (!area.value.trim()) area.value = JSON.stringify(receipt, null, 2);
      await check(receipt, key, out);
    } catch (error) {
      out.replaceChildren(h("p", { role: "alert", class: "failed" }, t("bad_receipt", error instanceof Error ? error.message : String(error))));
    }
  };
  area.addEventListener("dragover", (event) => event.preventDefault());
  area.addEventListener("drop", async (event) => {
    event.preventDefault();
    const file = (event as DragEvent).dataTransfer?.files[0];
    if (file) area.value = await file.text();
  });
  main.append(
    h("h1", {}, t("check")),
    h("p", {}, t("check_intro")),
    h("p", {}, h("strong", {}, t("log_key"), ": "), h("code", { "data-testid": "log-key", class: "hash" }, head.verifier_key)),
    h(
      "form",
      { onsubmit: run as EventListener },
      h("label", { for: "receipt" }, t("receipt")),
      area,
      h("label", { for: "position" }, t("or_position")),
      position,
      h("button", { type: "submit", "data-testid": "check-button" }, t("check_button")),
    ),
    out,
  );
}
