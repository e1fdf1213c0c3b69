// The kiosk page: ask, stream the answer as text (never HTML), show sources, collect feedback, reset when idle.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("kiosk-config").textContent);
  const $ = (id) => document.getElementById(id);
  const attract = $("attract"), app = $("app"), form = $("ask-form"), input = $("question");
  const conversation = $("conversation"), status = $("status"), askButton = $("ask-button");
  const suggestionList = $("suggestion-list"), switchButtons = document.querySelectorAll("[data-language]");
  // Letters only Vietnamese writes: ă đ ơ ư, â ê ô with a tone mark, and the tone marks no European language
  // uses. Bare â ê ô and é à á ã … are left out: a French or Spanish question must not switch the page.
  const VIETNAMESE = /[ăắằẳẵặấầẩẫậđếềểễệốồổỗộơớờởỡợưứừửữựảạẻẽẹỉĩịỏọủũụỳỷỹỵ]/iu;
  const REPLIES_WITHOUT_FEEDBACK = new Set(["off_topic", "clarify"]);
  let sessionId = null, busy = false, idleTimer = null;
  let language, t, chosen, replyStrings;

  function applyStrings(root) {
    for (const el of root.querySelectorAll("[data-t]")) el.textContent = t[el.dataset.t];
    for (const el of root.querySelectorAll("[data-t-label]")) el.setAttribute("aria-label", t[el.dataset.tLabel]);
    for (const el of root.querySelectorAll("[data-t-placeholder]")) el.placeholder = t[el.dataset.tPlaceholder];
  }

  function suggestionButton(text) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button"; b.className = "suggestion"; b.textContent = text;
    li.appendChild(b);
    return li;
  }

  // Every visible string follows the page's language; the conversation stays. `byVisitor`: the visitor chose
  // it (the switch, or a Vietnamese question), so it is sent with each question; otherwise the server detects.
  function setLanguage(code, byVisitor) {
    language = code; t = config.strings[code]; chosen = byVisitor; replyStrings = t;
    document.documentElement.lang = code;
    applyStrings(document);
    for (const b of switchButtons) b.setAttribute("aria-pressed", String(b.dataset.language === code));
    suggestionList.replaceChildren(...config.suggestions[code].map(suggestionButton));
  }

  function showApp() {
    attract.hidden = true;
    app.hidden = false;
    input.focus();
    armIdle();
  }

  function resetVisitor() {
    // Privacy for the next visitor: forget the session, wipe everything on screen, the museum's language again.
    sessionId = null;
    conversation.replaceChildren();
    input.value = "";
    status.textContent = "";
    setLanguage(config.defaultLanguage, false);
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
    applyStrings(node);
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

  // Off-topic and "did you mean" replies: each suggestion is a button that asks it.
  function showSuggestionsAfter(turn, suggestions) {
    if (!suggestions || !suggestions.length) return;
    const list = document.createElement("ul");
    list.className = "reply-suggestions";
    list.replaceChildren(...suggestions.map(suggestionButton));
    turn.appendChild(list);
  }

  // The answer's language: a Vietnamese answer switches the page; an English one does not switch it back
  // (a Vietnamese visitor may read English). Errors the page writes later follow the answer's language.
  function followAnswerLanguage(answer, code) {
    if (!code) return;
    answer.lang = code;
    if (code === "vi" && language !== "vi") setLanguage("vi", true);
    if (config.strings[code]) replyStrings = config.strings[code];
  }

  function errorText(statusCode) {
    if (statusCode === 503) return replyStrings.busy;
    if (statusCode === 429) return replyStrings.too_fast;
    if (statusCode === 422 || statusCode === 413) return replyStrings.too_long;
    return replyStrings.error;
  }

  function requestBody(question) {
    const body = { question };
    if (sessionId) body.session_id = sessionId;
    if (chosen) body.language = language;
    return JSON.stringify(body);
  }

  async function ask(question) {
    question = question.trim();
    if (!question || busy) return;
    if (VIETNAMESE.test(question.normalize("NFC"))) setLanguage("vi", true);
    busy = true; askButton.disabled = true; armIdle();
    status.textContent = t.thinking;
    input.value = "";
    const turn = addTurn(question);
    const answer = turn.querySelector(".answer");
    try {
      const response = await fetch("/api/v1/ask/stream", {
        method: "POST", headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
        body: requestBody(question),
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
            followAnswerLanguage(answer, data.language);
            showSources(turn, data.sources);
            showSuggestionsAfter(turn, data.suggestions);
            if (!REPLIES_WITHOUT_FEEDBACK.has(data.route)) showFeedback(turn, data.request_id);
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

  setLanguage(config.defaultLanguage, false);
  attract.addEventListener("click", showApp);
  // Keyboard alone: any key but Tab leaves the attract screen, wherever the focus is.
  document.addEventListener("keydown", (e) => { if (!attract.hidden && e.key !== "Tab") { e.preventDefault(); showApp(); } });
  $("reset").addEventListener("click", resetVisitor);
  for (const b of switchButtons) b.addEventListener("click", () => setLanguage(b.dataset.language, true));
  form.addEventListener("submit", (e) => { e.preventDefault(); ask(input.value); });
  // One listener for every suggestion button, those on the page and those after a reply.
  app.addEventListener("click", (e) => { const b = e.target.closest(".suggestion"); if (b) ask(b.textContent); });
  for (const ev of ["pointerdown", "keydown", "input"]) document.addEventListener(ev, armIdle, { passive: true });
  window.kiosk = { ask, resetVisitor };  // for the browser tests
})();
