const events = new EventSource('events');
events.addEventListener('state', (e) => {
  document.getElementById('state').textContent = JSON.stringify(JSON.parse(e.data).robot, null, 2);
});
