// The account page: sign in or create an account, see where you are signed in, sign devices out; see and
// edit the profile, verify the email, change the password, delete the account; and, from the links in
// mail, set a new password (/account/reset?token=...) or verify an address (/account/verify?token=...).
//
// Tokens live in this module's memory only: never localStorage, sessionStorage or cookies, so closing or
// reloading the tab signs this page out (the session itself stays until it expires or is signed out).
// A token from a mailed link is read once and removed from the address bar at once, so it stays out of
// history, bookmarks and screenshots; the page sends no Referer anywhere.
// Every call goes to this origin's REST API (CSP connect-src 'self'); errors branch on the API's `reason`.

const API = "/api/v1";
const ACCOUNT_PATH = "/account";

/** Reasons that mean "this access token is stale": refresh once, then retry. */
const REFRESHABLE = new Set(["TOKEN_EXPIRED", "TOKEN_INVALID"]);

/** Reasons a refused refresh token gives that already say why the session is over. */
const ENDINGS = new Set(["SESSION_REVOKED", "REFRESH_TOKEN_REUSED", "TOKEN_EXPIRED"]);

/** Plain-language messages, by the API's stable reason word. */
const MESSAGES = {
  INVALID_CREDENTIALS: "That email and password don't match an account. Check both and try again.",
  INVALID_REQUEST: "Fill in every field, then try again.",
  EMAIL_TAKEN: "An account with this email already exists. Sign in, or reset its password if you forgot it.",
  ACCOUNT_DISABLED: "This account is disabled. Contact the people who run this service.",
  DISPLAY_NAME_INVALID: "Display names have at most 100 characters, on one line. Check yours and try again.",
  RESET_TOKEN_INVALID:
    "This reset link doesn't work any more: it was used, replaced by a newer one, or expired. Ask for a new one.",
  VERIFICATION_TOKEN_INVALID:
    "This verification link doesn't work any more: it was used or expired. Sign in to send a new one.",
  TOKEN_TOO_LONG: "This link is damaged. Open it again from the mail, or ask for a new one.",
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
    refreshing = request("POST", "/auth/refresh", { body: { refresh_token: presented } })
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
async function authorized(method, path, body) {
  if (!tokens) throw new SessionEnded("NOT_AUTHENTICATED");
  const used = tokens.access;
  try {
    return await request(method, path, { body, bearer: used });
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
    return await request(method, path, { body, bearer: tokens.access });
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
  // A wrong password (changing the password, deleting the account) is a 401 too, but the session lives on.
  if (error instanceof ApiError && error.reason === "INVALID_CREDENTIALS") return error;
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

function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

/** Marks the first empty input of `inputs` invalid and says `prompt`; true when all are filled. */
function filled(inputs, prompts) {
  for (const input of inputs) input.removeAttribute("aria-invalid");
  // A password is taken as typed (spaces count); other fields are trimmed.
  const index = inputs.findIndex((input) => (input.type === "password" ? !input.value : !input.value.trim()));
  if (index === -1) return true;
  inputs[index].setAttribute("aria-invalid", "true");
  say(prompts[index], { error: true });
  inputs[index].focus();
  return false;
}

function invalid(input) {
  input.setAttribute("aria-invalid", "true");
  input.focus();
}

const VIEWS = ["sign-in", "reset", "verify"];
const ACCOUNT_SECTIONS = ["profile", "sessions", "password-change", "delete-account"];

function showOnly(ids) {
  for (const id of [...VIEWS, "verify-banner", ...ACCOUNT_SECTIONS]) $(id).hidden = !ids.includes(id);
}

// ---- signing in, creating an account, asking for a reset link: one form, three modes -------------------

const MODES = {
  "sign-in": {
    heading: "Sign in",
    hint: "Sign in to see where you are signed in, and to sign devices out.",
    button: "Sign in",
    password: "current-password",
  },
  "sign-up": {
    heading: "Create an account",
    hint: "Use your email address and a password of at least 8 characters.",
    button: "Create account",
    password: "new-password",
  },
  forgot: {
    heading: "Reset your password",
    hint: "Enter your account's email address: we'll mail you a link to choose a new password.",
    button: "Send reset link",
    password: null,
  },
};
let mode = "sign-in";

function setMode(next) {
  mode = next;
  const spec = MODES[next];
  $("sign-in-heading").textContent = spec.heading;
  $("sign-in-hint").textContent = spec.hint;
  $("sign-in-button").textContent = spec.button;
  $("password-field").hidden = spec.password === null;
  if (spec.password) $("password").setAttribute("autocomplete", spec.password);
  $("forgot-switch").hidden = next !== "sign-in";
  $("sign-up-switch").hidden = next !== "sign-in";
  $("sign-in-switch").hidden = next === "sign-in";
  $("email").removeAttribute("aria-invalid");
  $("password").removeAttribute("aria-invalid");
}

function switchMode(next) {
  setMode(next);
  say("");
  $("sign-in-heading").focus();
}

function showSignIn(message, { error = false, as = "sign-in" } = {}) {
  tokens = null;
  refreshing = null;
  linkToken = "";
  if (window.location.pathname !== ACCOUNT_PATH) history.replaceState(null, "", ACCOUNT_PATH);
  showOnly(["sign-in"]);
  $("session-list").replaceChildren();
  resetAccountForms();
  setMode(as);
  $("password").value = "";
  $("email").value = email;
  if (message) say(message, { error });
  $("email").focus();
}

function resetAccountForms() {
  for (const id of ["display-name", "current-password", "new-password", "delete-password"]) {
    $(id).value = "";
    $(id).removeAttribute("aria-invalid");
  }
  $("delete-form").hidden = true;
  $("delete-start-button").hidden = false;
  for (const input of document.querySelectorAll("input.username")) input.value = "";
}

function showAccount() {
  showOnly(ACCOUNT_SECTIONS);
  $("signed-in-as").textContent = email ? `Signed in as ${email}` : "";
  for (const input of document.querySelectorAll("input.username")) input.value = email;
}

async function submitSignInForm(event) {
  event.preventDefault();
  const emailInput = $("email");
  const passwordInput = $("password");
  const inputs = mode === "forgot" ? [emailInput] : [emailInput, passwordInput];
  if (!filled(inputs, ["Enter your email address.", "Enter your password."])) return;
  const button = $("sign-in-button");
  const address = emailInput.value.trim();
  busy(button, true);
  try {
    if (mode === "forgot") {
      say("Sending…");
      const body = await request("POST", "/auth/forgot-password", { body: { email: address } });
      const answer = (body?.message || "If an account exists for this email, a reset link has been sent").replace(/\.?$/, ".");
      say(`${answer} Check your inbox.`);
      return;
    }
    const password = passwordInput.value;
    if (mode === "sign-up") {
      say("Creating your account…");
      await request("POST", "/auth/register", { body: { email: address, password } });
      setMode("sign-in"); // the account exists: a failure from here on is a sign-in's
      await enterAccount(address, password, () => "Account created. You're signed in.");
      return;
    }
    say("Signing in…");
    await enterAccount(
      address,
      password,
      (sessions) => `Signed in. You are signed in on ${plural(sessions.length, "device", "devices")}.`,
    );
  } catch (error) {
    if (error instanceof SessionEnded) {
      showSignIn(messageFor(error), { error: true });
      return;
    }
    tokens = null;
    const onEmail = ["INVALID_EMAIL", "EMAIL_TAKEN"].includes(error.reason) || mode === "forgot";
    if (["INVALID_CREDENTIALS", "WEAK_PASSWORD", "PASSWORD_TOO_LONG", "INVALID_EMAIL", "EMAIL_TAKEN"].includes(error.reason)) {
      (onEmail ? emailInput : passwordInput).setAttribute("aria-invalid", "true");
    }
    say(messageFor(error), { error: true });
    (onEmail ? emailInput : passwordInput).focus();
  } finally {
    busy(button, false);
  }
}

/** Log in, then show the account: profile, devices and the rest. */
async function enterAccount(address, password, message) {
  const pair = await request("POST", "/auth/login", { body: { email: address, password } });
  keep(pair);
  email = address;
  $("password").value = "";
  showAccount();
  const [sessions] = await Promise.all([loadSessions(), loadProfile()]);
  say(message(sessions));
  $("sessions-heading").focus();
}

// ---- signed in ------------------------------------------------------------------------------------------

function renderProfile(profile) {
  email = profile.email || email;
  $("profile-email").textContent = profile.email || "";
  $("profile-verified").textContent = profile.email_verified ? "Yes" : "Not yet";
  $("display-name").value = profile.display_name || "";
  $("verify-banner").hidden = Boolean(profile.email_verified);
  const name = profile.display_name ? `${profile.display_name} (${email})` : email;
  $("signed-in-as").textContent = `Signed in as ${name}`;
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

/**
 * Runs an action that needs the session; an ended session goes back to the sign-in form. `messages`
 * overrides what a reason says here (a wrong password is the current one, not the sign-in's).
 */
async function withSession(button, action, messages = {}) {
  busy(button, true);
  try {
    await action();
  } catch (error) {
    if (error instanceof SessionEnded) {
      showSignIn(messageFor(error), { error: true });
    } else {
      say(messages[error.reason] ?? messageFor(error), { error: true });
    }
  } finally {
    busy(button, false);
  }
}

async function loadSessions() {
  const body = await authorized("GET", "/auth/sessions");
  renderSessions(body?.sessions ?? []);
  return body?.sessions ?? [];
}

async function loadProfile() {
  const profile = await authorized("GET", "/users/me");
  renderProfile(profile ?? {});
  return profile;
}

function signOutDevice(sessionId, device, button) {
  return withSession(button, async () => {
    try {
      await authorized("DELETE", `/auth/sessions/${encodeURIComponent(sessionId)}`);
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
      if (refresh) await request("POST", "/auth/logout", { body: { refresh_token: refresh } });
    } catch (error) {
      // Already revoked or expired is as good as signed out; a down service is not.
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
    }
    showSignIn("You signed out on this device.");
  });
}

function signOutEverywhere(button) {
  return withSession(button, async () => {
    const body = await authorized("POST", "/auth/logout-all");
    const count = Number(body?.revoked_sessions ?? 0);
    showSignIn(`You signed out everywhere (${plural(count, "device", "devices")}).`);
  });
}

function reload(button) {
  return withSession(button, async () => {
    const sessions = await loadSessions();
    say(`List updated: ${plural(sessions.length, "device", "devices")}.`);
  });
}

function sendVerification(button) {
  return withSession(button, async () => {
    await authorized("POST", "/auth/verify-email/request");
    say(`We sent a verification link to ${email}. Open it to verify your address.`);
  });
}

function saveName(event) {
  event.preventDefault();
  const input = $("display-name");
  input.removeAttribute("aria-invalid");
  return withSession($("save-name-button"), async () => {
    try {
      const profile = await authorized("PUT", "/users/me", { display_name: input.value });
      renderProfile(profile ?? {});
      say(profile?.display_name ? `Display name saved: ${profile.display_name}.` : "Display name removed.");
    } catch (error) {
      if (error instanceof ApiError && error.reason === "DISPLAY_NAME_INVALID") invalid(input);
      throw error;
    }
  });
}

function changePassword(event) {
  event.preventDefault();
  const current = $("current-password");
  const next = $("new-password");
  if (!filled([current, next], ["Enter your current password.", "Enter a new password."])) return undefined;
  return withSession(
    $("change-password-button"),
    async () => {
      let body;
      try {
        body = await authorized("POST", "/auth/change-password", {
          current_password: current.value,
          new_password: next.value,
        });
      } catch (error) {
        if (error instanceof ApiError && error.reason === "INVALID_CREDENTIALS") invalid(current);
        if (error instanceof ApiError && ["WEAK_PASSWORD", "PASSWORD_TOO_LONG"].includes(error.reason)) invalid(next);
        throw error;
      }
      current.value = "";
      next.value = "";
      const count = Number(body?.revoked_sessions ?? 0);
      await loadSessions();
      const others = count ? `${plural(count, "other device was", "other devices were")} signed out.` : "No other device was signed in.";
      say(`Password changed. ${others}`);
    },
    { INVALID_CREDENTIALS: "That isn't your current password. Check it and try again." },
  );
}

function startDeleting() {
  $("delete-start-button").hidden = true;
  $("delete-form").hidden = false;
  $("delete-password").focus();
}

function keepAccount() {
  $("delete-password").value = "";
  $("delete-password").removeAttribute("aria-invalid");
  $("delete-form").hidden = true;
  $("delete-start-button").hidden = false;
  $("delete-start-button").focus();
}

function deleteAccount(event) {
  event.preventDefault();
  const input = $("delete-password");
  if (!filled([input], ["Enter your password to confirm."])) return undefined;
  return withSession(
    $("delete-confirm-button"),
    async () => {
      try {
        await authorized("DELETE", "/users/me", { password: input.value });
      } catch (error) {
        if (error instanceof ApiError && error.reason === "INVALID_CREDENTIALS") invalid(input);
        throw error;
      }
      email = "";
      showSignIn("Your account has been deleted, and every device signed out.");
    },
    { INVALID_CREDENTIALS: "That password isn't right. Your account was not deleted." },
  );
}

// ---- the views of mailed links: /account/reset?token=... and /account/verify?token=... ---------------

let linkToken = ""; // the token of the mailed link this page was opened with, in memory only

/** Read the link's token, then take it out of the address bar (and so out of history) at once. */
function takeLinkToken() {
  const token = new URLSearchParams(window.location.search).get("token") || "";
  if (window.location.search || window.location.hash) history.replaceState(null, "", window.location.pathname);
  return token;
}

function showLinkView(view) {
  linkToken = takeLinkToken();
  showOnly([view]);
  if (!linkToken) {
    $(view === "reset" ? "reset-form" : "verify-button").hidden = true;
    say("This link is incomplete. Open it again from the mail, or ask for a new one.", { error: true });
  }
  $(`${view}-heading`).focus();
}

async function submitReset(event) {
  event.preventDefault();
  const input = $("reset-password");
  if (!filled([input], ["Enter a new password."])) return;
  const button = $("reset-button");
  busy(button, true);
  say("Setting your new password…");
  try {
    const body = await request("POST", "/auth/reset-password", {
      body: { token: linkToken, new_password: input.value },
    });
    linkToken = "";
    input.value = "";
    $("reset-form").hidden = true;
    $("reset-next").hidden = false;
    const count = Number(body?.revoked_sessions ?? 0);
    const ended = count ? ` ${plural(count, "device was", "devices were")} signed out.` : "";
    say(`Your password has been reset.${ended} Sign in with your new password.`);
    $("reset-next").querySelector("a").focus();
  } catch (error) {
    if (error instanceof ApiError && ["RESET_TOKEN_INVALID", "TOKEN_TOO_LONG"].includes(error.reason)) {
      // A dead link: straight to asking for a new one.
      showSignIn(messageFor(error), { error: true, as: "forgot" });
      return;
    }
    if (error instanceof ApiError && ["WEAK_PASSWORD", "PASSWORD_TOO_LONG"].includes(error.reason)) invalid(input);
    say(messageFor(error), { error: true });
  } finally {
    busy(button, false);
  }
}

async function verifyEmail(button) {
  busy(button, true);
  say("Verifying your email…");
  try {
    await request("POST", "/auth/verify-email", { body: { token: linkToken } });
    linkToken = "";
    button.hidden = true;
    $("verify-next").hidden = false;
    say("Email verified. Thank you.");
    $("verify-next").querySelector("a").focus();
  } catch (error) {
    if (error instanceof ApiError && ["VERIFICATION_TOKEN_INVALID", "TOKEN_TOO_LONG"].includes(error.reason)) {
      button.hidden = true;
      $("verify-next").hidden = false;
    }
    say(messageFor(error), { error: true });
  } finally {
    busy(button, false);
  }
}

function start() {
  $("sign-in-form").addEventListener("submit", submitSignInForm);
  $("forgot-switch").addEventListener("click", () => switchMode("forgot"));
  $("sign-up-switch").addEventListener("click", () => switchMode("sign-up"));
  $("sign-in-switch").addEventListener("click", () => switchMode("sign-in"));
  $("reload-button").addEventListener("click", (event) => reload(event.currentTarget));
  $("sign-out-here-button").addEventListener("click", (event) => signOutHere(event.currentTarget));
  $("sign-out-everywhere-button").addEventListener("click", (event) => signOutEverywhere(event.currentTarget));
  $("send-verification-button").addEventListener("click", (event) => sendVerification(event.currentTarget));
  $("profile-form").addEventListener("submit", saveName);
  $("password-change-form").addEventListener("submit", changePassword);
  $("delete-start-button").addEventListener("click", startDeleting);
  $("delete-cancel-button").addEventListener("click", keepAccount);
  $("delete-form").addEventListener("submit", deleteAccount);
  $("reset-form").addEventListener("submit", submitReset);
  $("verify-button").addEventListener("click", (event) => verifyEmail(event.currentTarget));
  setMode("sign-in");
  const view = window.location.pathname.replace(/\/+$/, "");
  if (view === `${ACCOUNT_PATH}/reset`) showLinkView("reset");
  if (view === `${ACCOUNT_PATH}/verify`) showLinkView("verify");
  document.documentElement.dataset.ready = "true";
}

start();
