// A tiny single-page app: the browser routes, the API (lab 02) serves data.
const app = document.getElementById("app");
const apiUrl = app.dataset.apiUrl;

function render() {
  if (location.pathname.startsWith("/orders")) {
    app.textContent = apiUrl ? "Fetching your orders…" : "The orders API arrives in lab 02.";
    if (apiUrl) {
      fetch(`${apiUrl}/orders`).then((r) => r.json()).then((orders) => {
        app.textContent = `${orders.length} order(s)`;
      });
    }
  } else {
    app.textContent = "Welcome: this page came from S3 through CloudFront.";
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a");
  if (link && link.origin === location.origin) {
    event.preventDefault();
    history.pushState({}, "", link.pathname);
    render();
  }
});
window.addEventListener("popstate", render);
render();
