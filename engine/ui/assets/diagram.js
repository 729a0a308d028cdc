// The BPMN diagram of a page: bpmn-js's viewer, with a layout made on the spot for
// files that carry no diagram interchange (as Catflow's own processes), and the
// page's marks (completed / active / failed / problem) and notes on the elements.
import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";
import { layoutProcess } from "bpmn-auto-layout";

const MARKERS = {
  completed: "cf-completed",
  active: "cf-active",
  failed: "cf-failed",
  problem: "cf-problem",
};

function data(id, fallback) {
  const el = id && document.getElementById(id);
  if (!el) return fallback;
  try {
    return JSON.parse(el.textContent || "null") ?? fallback;
  } catch {
    return fallback;
  }
}

const BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI";
// Children a flow node may have before its incoming/outgoing references (BPMN schema).
const LEADING = new Set(["documentation", "extensionElements", "auditing", "monitoring", "categoryValueRef", "incoming"]);

// The auto-layout follows each node's <incoming>/<outgoing>, which BPMN files written
// by hand (or by SpiffWorkflow's tools) often leave out, naming only each flow's
// sourceRef and targetRef: add the missing references so the flows are drawn.
function withFlowRefs(doc) {
  const byId = new Map();
  for (const el of doc.getElementsByTagName("*")) {
    const id = el.getAttribute("id");
    if (id) byId.set(id, el);
  }
  const refs = (el, name) =>
    new Set(Array.from(el.children).filter((c) => c.namespaceURI === BPMN && c.localName === name).map((c) => c.textContent.trim()));
  function add(node, name, flowId) {
    if (!node || refs(node, name).has(flowId)) return;
    const ref = doc.createElementNS(BPMN, (node.prefix ? node.prefix + ":" : "") + name);
    ref.textContent = flowId;
    let after = null;
    for (const child of node.children) {
      if (child.namespaceURI === BPMN && (LEADING.has(child.localName) || (name === "outgoing" && child.localName === "outgoing"))) after = child;
      else if (child.namespaceURI !== BPMN && child.localName === "extensionElements") after = child;
    }
    node.insertBefore(ref, after ? after.nextSibling : node.firstChild);
  }
  for (const flow of doc.getElementsByTagNameNS(BPMN, "sequenceFlow")) {
    const id = flow.getAttribute("id");
    if (!id) continue;
    add(byId.get(flow.getAttribute("sourceRef")), "outgoing", id);
    add(byId.get(flow.getAttribute("targetRef")), "incoming", id);
  }
}

async function drawable(xml) {
  const doc = new DOMParser().parseFromString(xml, "application/xml");
  if (doc.getElementsByTagName("parsererror").length) return xml; // the viewer says why
  if (doc.getElementsByTagNameNS(BPMNDI, "BPMNDiagram").length) return xml;
  withFlowRefs(doc);
  return layoutProcess(new XMLSerializer().serializeToString(doc));
}

async function show(container) {
  const source = document.getElementById(container.dataset.xml);
  const marks = data(container.dataset.marks, {});
  const notes = data(container.dataset.notes, {});
  const fallback = container.querySelector(".diagram-fallback");
  let xml = source ? source.value : "";
  try {
    xml = await drawable(xml);
    const viewer = new NavigatedViewer({ container: container.querySelector(".diagram-canvas") });
    await viewer.importXML(xml);
    const canvas = viewer.get("canvas");
    const registry = viewer.get("elementRegistry");
    const overlays = viewer.get("overlays");
    canvas.zoom("fit-viewport", "auto");
    const missing = [];
    for (const [id, mark] of Object.entries(marks)) {
      if (registry.get(id) && MARKERS[mark]) canvas.addMarker(id, MARKERS[mark]);
      else missing.push(id);
    }
    for (const [id, messages] of Object.entries(notes)) {
      if (!registry.get(id)) continue;
      const note = document.createElement("div");
      note.className = "cf-note";
      note.dataset.element = id;
      note.textContent = messages.join("\n");
      overlays.add(id, "cf-note", { position: { bottom: -6, left: 0 }, html: note });
    }
    container.dataset.state = "ready";
    container.dataset.unplaced = missing.join(" ");
  } catch (error) {
    container.dataset.state = "failed";
    if (fallback) fallback.textContent = "The diagram cannot be drawn: " + (error && error.message ? error.message : error);
  }
}

function start() {
  for (const container of document.querySelectorAll("[data-diagram]")) show(container);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
