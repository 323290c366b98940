// The account page: sign in, see where you are signed in, sign devices out.
//
// Tokens live in this module's memory only: never localStorage, sessionStorage or cookies, so closing or
// reloading the tab signs this page out (the session itself stays until it expires or is signed out).
// Every call goes to this origin's REST API (CSP connect-src 'self'); errors branch on the API's `reason`.

const API = "/api/v1/auth";

/** Reasons that mean "this access token is stale": refresh once, then retry. */
const REFRESHABLE = new Set(["TOKEN_EXPIRED", "TOKEN_INVALID"]);

/** Reasons a refused refresh token gives that already say why the session is over. */
const ENDINGS = new Set(["SESSION_REVOKED", "REFRESH_TOKEN_REUSED", "TOKEN_EXPIRED"]);

/** Plain-language messages, by the API's stable reason word. */
const MESSAGES = {
  INVALID_CREDENTIALS: "That email and password don't match an account. Check both and try again.",
  INVALID_EMAIL: "That doesn't look like an email address. Check it and try again.",
  WEAK_PASSWORD: "Passwords have at least 8 characters. Check yours and try again.",
  PASSWORD_TOO_LONG: "That password is too long. Check it and try again.",
  THROTTLED: "Too many attempts. Wait a little, then try again.",
  TOKEN_EXPIRED: "Your sign-in on this device has expired. Please sign in again.",
  TOKEN_INVALID: "Your sign-in on this device is no longer valid. Please sign in again.",
  SESSION_REVOKED:
    "This device was signed out, from another device or by signing out everywhere. Please sign in again.",
  REFRESH_TOKEN_REUSED:
    "For your safety this device was signed out, because its sign-in was used twice. Please sign in again.",
  NOT_AUTHENTICATED: "Please sign in.",
  SESSION_NOT_FOUND: "That device was already signed out.",
  STORE_UNAVAILABLE: "The service can't reach its storage right now. Try again in a moment.",
  SERVICE_UNAVAILABLE: "The service is unavailable right now. Try again in a moment.",
  NOT_SERVING: "The service is unavailable right now. Try again in a moment.",
  TIMEOUT: "The service took too long to answer. Try again in a moment.",
  NETWORK: "Can't reach the service. Check your connection and try again.",
};

function messageFor(error) {
  if (error.reason === "THROTTLED" && error.retryAfter) {
    const seconds = Number(error.retryAfter);
    if (Number.isFinite(seconds) && seconds > 0) {
      return `Too many attempts. Try again in ${seconds} second${seconds === 1 ? "" : "s"}.`;
    }
  }
  return MESSAGES[error.reason] ?? `Something went wrong (${error.reason || "unknown error"}). Try again.`;
}

/** An answer of the API that is not a success, with its stable reason word. */
class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.reason = body?.reason || (status === 0 ? "NETWORK" : "");
    this.retryAfter = retryAfter;
  }
}

// ---- state: in memory only ------------------------------------------------------------------------------

let tokens = null; // {access, refresh, sessionId}
let email = "";
let refreshing = null; // the one refresh in flight, shared by every caller that needs it

// ---- the API --------------------------------------------------------------------------------------------

async function request(method, path, { body, bearer } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, null, null);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  if (!response.ok) throw new ApiError(response.status, payload, response.headers.get("Retry-After"));
  return payload;
}

function keep(pair) {
  tokens = { access: pair.access_token, refresh: pair.refresh_token, sessionId: pair.session_id };
}

/** Rotate the refresh token; concurrent callers share one call, so a stale token refreshes exactly once. */
function refreshOnce() {
  if (!refreshing) {
    const presented = tokens.refresh;
    refreshing = request("POST", "/refresh", { body: { refresh_token: presented } })
      .then((pair) => keep(pair))
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

/**
 * A call with the access token. A stale access token (TOKEN_EXPIRED, TOKEN_INVALID) is refreshed once and
 * the call retried once; anything that means the session is over throws SessionEnded.
 */
async function authorized(method, path) {
  if (!tokens) throw new SessionEnded("NOT_AUTHENTICATED");
  const used = tokens.access;
  try {
    return await request(method, path, { bearer: used });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401 || !REFRESHABLE.has(error.reason)) {
      throw endedOr(error);
    }
  }
  try {
    // Another call may have refreshed while this one was in flight: then just retry with the new token.
    if (tokens && tokens.access === used) await refreshOnce();
  } catch (error) {
    // The refresh token was refused (revoked, reused, expired): the session is over.
    if (error instanceof ApiError && error.status !== 0 && error.status < 500 && error.status !== 429) {
      throw new SessionEnded(ENDINGS.has(error.reason) ? error.reason : "SESSION_REVOKED");
    }
    throw error;
  }
  if (!tokens) throw new SessionEnded("SESSION_REVOKED");
  try {
    return await request(method, path, { bearer: tokens.access });
  } catch (error) {
    throw endedOr(error);
  }
}

class SessionEnded extends Error {
  constructor(reason) {
    super(reason);
    this.reason = reason;
  }
}

function endedOr(error) {
  if (error instanceof ApiError && (error.status === 401 || error.reason === "NOT_AUTHENTICATED")) {
    return new SessionEnded(REFRESHABLE.has(error.reason) ? "SESSION_REVOKED" : error.reason || "SESSION_REVOKED");
  }
  return error;
}

// ---- what a user agent string means, in plain words ---------------------------------------------------

const BROWSERS = [
  [/\bEdg(?:e|A|iOS)?\//, "Edge"],
  [/\bOPR\/|\bOpera\b/, "Opera"],
  [/\bSamsungBrowser\//, "Samsung Internet"],
  [/\bVivaldi\//, "Vivaldi"],
  [/\bFirefox\/|\bFxiOS\//, "Firefox"],
  [/\bCriOS\/|\bChrome\/|\bChromium\/|\bHeadlessChrome\//, "Chrome"],
  [/\bVersion\/[\d.]+.*\bSafari\//, "Safari"],
  [/^curl\//, "curl"],
  [/^grpc-python|^python-|^aiohttp|^Python/i, "a Python program"],
  [/^okhttp\//, "an Android app"],
];

const SYSTEMS = [
  [/\bWindows\b/, "Windows"],
  [/\bAndroid\b/, "Android"],
  [/\biPhone\b/, "iPhone"],
  [/\biPad\b/, "iPad"],
  [/\bCrOS\b/, "ChromeOS"],
  [/\bMac OS X\b|\bMacintosh\b/, "macOS"],
  [/\bLinux\b|\bX11\b/, "Linux"],
];

export function describeDevice(userAgent) {
  const agent = (userAgent || "").trim();
  if (!agent) return "Unknown device";
  const browser = BROWSERS.find(([pattern]) => pattern.test(agent))?.[1];
  const system = SYSTEMS.find(([pattern]) => pattern.test(agent))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  if (browser) return browser.replace(/^a /, "A ");
  if (system) return `A browser on ${system}`;
  // Unknown client: its own name, without the version details.
  return agent.split(/[\s/;(]/)[0].slice(0, 40) || "Unknown device";
}

// ---- readable times -------------------------------------------------------------------------------------

const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const STEPS = [
  [60, "second"],
  [60, "minute"],
  [24, "hour"],
  [7, "day"],
  [4.35, "week"],
  [12, "month"],
  [Infinity, "year"],
];

export function ago(date, now = new Date()) {
  let amount = (date.getTime() - now.getTime()) / 1000;
  if (Math.abs(amount) < 60) return "just now";
  for (const [size, unit] of STEPS) {
    if (Math.abs(amount) < size) return relative.format(Math.round(amount), unit);
    amount /= size;
  }
  return absolute.format(date);
}

function setTime(element, iso, readable) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) {
    element.textContent = "unknown";
    return;
  }
  element.dateTime = date.toISOString();
  element.title = absolute.format(date);
  element.textContent = readable(date);
}

// ---- the page -------------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function say(text, { error = false } = {}) {
  const status = $("status");
  status.classList.toggle("error", error);
  // Clear, then set on the next frame, so the same message said twice is announced twice.
  status.textContent = "";
  requestAnimationFrame(() => {
    status.textContent = text;
  });
}

function busy(button, on) {
  if (!button) return;
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
}

function showSignIn(message, { error = false } = {}) {
  tokens = null;
  refreshing = null;
  $("sessions").hidden = true;
  $("session-list").replaceChildren();
  $("sign-in").hidden = false;
  $("password").value = "";
  if (email) $("email").value = email;
  if (message) say(message, { error });
  $("email").focus();
}

function showSessions() {
  $("sign-in").hidden = true;
  $("sessions").hidden = false;
  $("signed-in-as").textContent = email ? `Signed in as ${email}` : "";
}

function renderSessions(sessions) {
  const template = $("session-template");
  const ordered = [...sessions].sort(
    (a, b) => Number(b.current) - Number(a.current) || (b.last_used_at || "").localeCompare(a.last_used_at || ""),
  );
  const items = ordered.map((session) => {
    const item = template.content.firstElementChild.cloneNode(true);
    const device = describeDevice(session.user_agent);
    item.dataset.sessionId = session.session_id;
    item.classList.toggle("current", Boolean(session.current));
    item.querySelector(".device").textContent = device;
    if (session.user_agent) item.querySelector(".device").title = session.user_agent;
    item.querySelector(".badge").hidden = !session.current;
    item.querySelector(".address").textContent = session.ip_address || "unknown";
    setTime(item.querySelector(".created"), session.created_at, (date) => absolute.format(date));
    setTime(item.querySelector(".last-used"), session.last_used_at, (date) => ago(date));
    const button = item.querySelector(".sign-out");
    // The visible text stays short; the accessible name says which device ("Sign out Firefox on Linux").
    button.querySelector(".visually-hidden").textContent = session.current ? ` ${device} (this device)` : ` ${device}`;
    button.addEventListener("click", () =>
      session.current ? signOutHere(button) : signOutDevice(session.session_id, device, button),
    );
    return item;
  });
  $("session-list").replaceChildren(...items);
}

/** Runs an action that needs the session; an ended session goes back to the sign-in form. */
async function withSession(button, action) {
  busy(button, true);
  try {
    await action();
  } catch (error) {
    if (error instanceof SessionEnded) {
      showSignIn(messageFor(error), { error: true });
    } else {
      say(messageFor(error), { error: true });
    }
  } finally {
    busy(button, false);
  }
}

async function loadSessions() {
  const body = await authorized("GET", "/sessions");
  renderSessions(body?.sessions ?? []);
  return body?.sessions ?? [];
}

async function signIn(event) {
  event.preventDefault();
  const emailInput = $("email");
  const passwordInput = $("password");
  const button = $("sign-in-button");
  emailInput.removeAttribute("aria-invalid");
  passwordInput.removeAttribute("aria-invalid");
  if (!emailInput.value.trim() || !passwordInput.value) {
    const missing = !emailInput.value.trim() ? emailInput : passwordInput;
    missing.setAttribute("aria-invalid", "true");
    say(missing === emailInput ? "Enter your email address." : "Enter your password.", { error: true });
    missing.focus();
    return;
  }
  busy(button, true);
  say("Signing in…");
  try {
    const pair = await request("POST", "/login", {
      body: { email: emailInput.value.trim(), password: passwordInput.value },
    });
    keep(pair);
    email = emailInput.value.trim();
    passwordInput.value = "";
    showSessions();
    const sessions = await loadSessions();
    say(`Signed in. You are signed in on ${sessions.length} device${sessions.length === 1 ? "" : "s"}.`);
    $("sessions-heading").focus();
  } catch (error) {
    if (error instanceof SessionEnded) {
      showSignIn(messageFor(error), { error: true });
      return;
    }
    tokens = null;
    if (error.reason === "INVALID_CREDENTIALS") passwordInput.setAttribute("aria-invalid", "true");
    if (error.reason === "INVALID_EMAIL") emailInput.setAttribute("aria-invalid", "true");
    say(messageFor(error), { error: true });
    (error.reason === "INVALID_EMAIL" ? emailInput : passwordInput).focus();
  } finally {
    busy(button, false);
  }
}

function signOutDevice(sessionId, device, button) {
  return withSession(button, async () => {
    try {
      await authorized("DELETE", `/sessions/${encodeURIComponent(sessionId)}`);
      say(`Signed out ${device}.`);
    } catch (error) {
      if (!(error instanceof ApiError) || error.reason !== "SESSION_NOT_FOUND") throw error;
      say(messageFor(error));
    }
    await loadSessions();
    $("sessions-heading").focus();
  });
}

function signOutHere(button) {
  return withSession(button, async () => {
    const refresh = tokens?.refresh;
    try {
      if (refresh) await request("POST", "/logout", { body: { refresh_token: refresh } });
    } catch (error) {
      // Already revoked or expired is as good as signed out; a down service is not.
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
    }
    showSignIn("You signed out on this device.");
  });
}

function signOutEverywhere(button) {
  return withSession(button, async () => {
    const body = await authorized("POST", "/logout-all");
    const count = Number(body?.revoked_sessions ?? 0);
    showSignIn(`You signed out everywhere (${count} device${count === 1 ? "" : "s"}).`);
  });
}

function reload(button) {
  return withSession(button, async () => {
    const sessions = await loadSessions();
    say(`List updated: ${sessions.length} device${sessions.length === 1 ? "" : "s"}.`);
  });
}

function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("reload-button").addEventListener("click", (event) => reload(event.currentTarget));
  $("sign-out-here-button").addEventListener("click", (event) => signOutHere(event.currentTarget));
  $("sign-out-everywhere-button").addEventListener("click", (event) => signOutEverywhere(event.currentTarget));
  document.documentElement.dataset.ready = "true";
}

start();
