// The topic page's only script: a "Play from 12:34" control starts its card's own player
// at the moment the transcript matched. Without the script the control is a plain link to
// the audio at that moment (a #t= media fragment). The page's Content-Security-Policy
// allows this exact text by its hash, and nothing else.
document.addEventListener("click", function (event) {
  var control = event.target instanceof Element ? event.target.closest("a[data-start]") : null;
  var card = control ? control.closest("article") : null;
  var audio = card ? card.querySelector("audio") : null;
  if (!audio) {
    return;
  }
  event.preventDefault();
  var start = Number(control.getAttribute("data-start"));
  function seek() {
    audio.currentTime = start;
  }
  if (audio.readyState > 0) {
    seek();
  } else {
    audio.addEventListener("loadedmetadata", seek, { once: true });
  }
  var playing = audio.play();
  if (playing) {
    playing.catch(function () {});
  }
});
