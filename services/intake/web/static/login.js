/* 登录: the token goes to sessionStorage (for fetch) and, by the normal form post, into the HttpOnly cookie. */
"use strict";
(() => {
  const form = document.getElementById("login-form");
  if (!form) return;
  const err = document.getElementById("err-token");
  if (err && !err.hidden) { try { sessionStorage.removeItem(LF.TOKEN_KEY); } catch (e) { /* ignore */ } }
  form.addEventListener("submit", () => {
    const value = (form.elements.token.value || "").trim();
    try {
      if (value) sessionStorage.setItem(LF.TOKEN_KEY, value);
    } catch (e) { /* storage disabled: the cookie still works */ }
  });
})();
