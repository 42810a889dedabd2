// login — username and password for POST /auth/token; the token's claims carry the role
// that decides which buttons the other pages show.
import * as api from './api.js';
import { h, put, $, errText } from './util.js';

export function mount(main, route) {
  document.title = 'Log in · gust';
  const reason = sessionStorage.getItem('gust.loginReason');
  sessionStorage.removeItem('gust.loginReason');
  put(main, h`<section class="login">
    <h1><img src="/ui/logo.svg" alt="" width="32" height="32"> gust</h1>
    <form id="login-form" novalidate>
      <label for="login-user">Username</label>
      <input id="login-user" name="username" autocomplete="username" required autofocus>
      <label for="login-pass">Password</label>
      <input id="login-pass" name="password" type="password" autocomplete="current-password" required>
      <p id="login-error" class="error" role="alert">${reason || ''}</p>
      <button type="submit" class="primary">Log in</button>
    </form>
    <p class="muted small">gust standalone prints the admin password on its first start and keeps it in
    <code>$GUST_HOME/standalone_admin_password.txt</code>. Other users: <code>gust users create</code>.</p>
  </section>`);
  const form = $('#login-form', main);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('#login-error', main);
    err.textContent = '';
    const btn = form.querySelector('button');
    btn.disabled = true;
    try {
      await api.login(form.username.value, form.password.value);
      const next = route.params.get('next');
      location.hash = next && next.startsWith('#/') && !next.startsWith('#/login') ? next : '#/dags';
    } catch (e) {
      err.textContent = errText(e);
      form.password.select();
    } finally {
      btn.disabled = false;
    }
  });
  $('#login-user', main).focus();
  return {};
}
