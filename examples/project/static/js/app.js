fetch("/api/users")
  .then((r) => r.json())
  .then((users) => { document.getElementById("user-count").textContent = users.length; });
