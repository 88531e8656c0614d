// Sign in and out; the header shows who is signed in.

import { V1, ApiError, currentSession, post, request, setSession } from "./api.js";
import { $, say } from "./dom.js";
import { go, parseHash, register } from "./router.js";

function showSession(session) {
  $("#main-nav").hidden = !session;
  $("#session-box").hidden = !session;
  $("#whoami").textContent = session?.user?.username || "";
}

async function signIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const error = $("#login-error");
  const button = form.querySelector("button[type=submit]");
  say(error, "");
  button.disabled = true;
  try {
    const data = await post(
      `${V1}/auth/login`,
      { username: form.elements.namedItem("username").value.trim(), password: form.elements.namedItem("password").value },
      { auth: false },
    );
    setSession(data);
    form.reset();
    const next = parseHash(window.location.hash).query.get("next");
    go(next && next.startsWith("#/") && !next.startsWith("#/login") ? next : "#/library");
  } catch (err) {
    say(error, err instanceof ApiError ? err.message : "The server could not be reached.");
    form.elements.namedItem("password").focus();
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  const session = currentSession();
  if (session) {
    // Revoke both tokens on the server; sign out locally whatever happens.
    await request("POST", `${V1}/auth/logout`, {
      json: { refresh_token: session.refresh_token },
    }).catch(() => null);
  }
  setSession(null);
  go("#/login");
}

export function init() {
  $("#login-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  window.addEventListener("t2m:session", (event) => {
    showSession(event.detail);
    // Signed out (or the session expired) while on a private page: to sign in.
    if (!event.detail && !window.location.hash.startsWith("#/login")) go("#/login");
  });
  showSession(currentSession());
  register("login", {
    title: "Sign in",
    public: true,
    enter() {
      if (currentSession()) {
        go("#/library");
        return;
      }
      $("#login-username").focus();
    },
  });
}
