// The kiosk page: ask, stream the answer as text (never HTML), show sources, collect feedback, reset when idle.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("kiosk-config").textContent);
  const t = config.strings;
  const $ = (id) => document.getElementById(id);
  const attract = $("attract"), app = $("app"), form = $("ask-form"), input = $("question");
  const conversation = $("conversation"), status = $("status"), askButton = $("ask-button");
  let sessionId = null, busy = false, idleTimer = null;

  function showApp() {
    attract.hidden = true;
    app.hidden = false;
    input.focus();
    armIdle();
  }

  function resetVisitor() {
    // Privacy for the next visitor: forget the session and wipe everything on screen.
    sessionId = null;
    conversation.replaceChildren();
    input.value = "";
    status.textContent = "";
    app.hidden = true;
    attract.hidden = false;
    attract.focus();
  }

  function armIdle() {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(resetVisitor, config.idleResetSeconds * 1000);
  }

  function addTurn(question) {
    const node = $("turn-template").content.firstElementChild.cloneNode(true);
    node.querySelector(".question").textContent = question;
    conversation.appendChild(node);
    node.scrollIntoView({ block: "end" });
    return node;
  }

  function showSources(turn, sources) {
    const list = turn.querySelector(".sources");
    list.replaceChildren();
    for (const s of sources) {
      const li = document.createElement("li");
      li.textContent = s.section ? `${s.title} — ${s.section}` : s.title;
      list.appendChild(li);
    }
    list.hidden = sources.length === 0;
  }

  function showFeedback(turn, requestId) {
    const box = turn.querySelector(".feedback");
    box.hidden = false;
    const send = async (helpful) => {
      box.replaceChildren(Object.assign(document.createElement("span"), { textContent: t.thanks }));
      try {
        await fetch("/api/v1/feedback", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ request_id: requestId, helpful }) });
      } catch (e) { /* feedback is best effort */ }
    };
    box.querySelector(".feedback-yes").addEventListener("click", () => send(true));
    box.querySelector(".feedback-no").addEventListener("click", () => send(false));
  }

  function showSuggestionsAfter(turn, suggestions) {
    if (!suggestions || !suggestions.length) return;
    const list = document.createElement("ul");
    list.className = "sources";
    for (const s of suggestions) {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button"; b.className = "suggestion"; b.textContent = s;
      b.addEventListener("click", () => ask(s));
      li.appendChild(b); list.appendChild(li);
    }
    turn.appendChild(list);
  }

  function errorText(statusCode) {
    if (statusCode === 503) return t.busy;
    if (statusCode === 429) return t.too_fast;
    if (statusCode === 422 || statusCode === 413) return t.too_long;
    return t.error;
  }

  async function ask(question) {
    question = question.trim();
    if (!question || busy) return;
    busy = true; askButton.disabled = true; armIdle();
    status.textContent = t.thinking;
    input.value = "";
    const turn = addTurn(question);
    const answer = turn.querySelector(".answer");
    try {
      const response = await fetch("/api/v1/ask/stream", {
        method: "POST", headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: JSON.stringify(sessionId ? { question, session_id: sessionId } : { question }),
      });
      if (!response.ok) throw { statusCode: response.status };
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] || "null");
          if (event === "delta") answer.textContent += data.text;           // text, never HTML
          else if (event === "done") {
            answer.textContent = data.answer;                                 // the cleaned final answer
            sessionId = data.session_id;
            showSources(turn, data.sources);
            if (data.route === "off_topic") showSuggestionsAfter(turn, data.suggestions);
            else showFeedback(turn, data.request_id);
          } else if (event === "error") throw { statusCode: data.status };
        }
      }
      status.textContent = "";
    } catch (e) {
      answer.textContent = errorText(e && e.statusCode);
      status.textContent = "";
    } finally {
      answer.setAttribute("aria-busy", "false");
      turn.scrollIntoView({ block: "end" });
      busy = false; askButton.disabled = false; input.focus(); armIdle();
    }
  }

  attract.addEventListener("click", showApp);
  // Keyboard alone: any key but Tab leaves the attract screen, wherever the focus is.
  document.addEventListener("keydown", (e) => { if (!attract.hidden && e.key !== "Tab") { e.preventDefault(); showApp(); } });
  $("reset").addEventListener("click", resetVisitor);
  form.addEventListener("submit", (e) => { e.preventDefault(); ask(input.value); });
  for (const b of document.querySelectorAll(".suggestion")) b.addEventListener("click", () => ask(b.textContent));
  for (const ev of ["pointerdown", "keydown", "input"]) document.addEventListener(ev, armIdle, { passive: true });
  window.kiosk = { ask, resetVisitor };  // for the browser tests
})();
