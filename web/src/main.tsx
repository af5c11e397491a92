import { render } from "preact";
import { init } from "securechat-client";
import { App } from "./ui/App";
import "./styles.css";

const root = document.getElementById("app");

init()
  .then(() => {
    if (root) {
      root.textContent = "";
      render(<App />, root);
    }
  })
  .catch((error: unknown) => {
    if (root) {
      root.textContent = "";
      const p = document.createElement("p");
      p.className = "boot error";
      p.textContent = `SecureChat cannot start in this browser: ${error instanceof Error ? error.message : String(error)}`;
      root.append(p);
    }
  });
