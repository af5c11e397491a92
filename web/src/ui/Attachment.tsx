// Attachments in the timeline: images as thumbnails (decrypted in the browser, shown as data:
// URLs, which the relay's CSP allows for images), other files as a chip with a download.

import type { AttachmentRef, SecureChatClient } from "securechat-client";
import { useEffect, useState } from "preact/hooks";
import { explain } from "../errors";
import { fileSize } from "../format";
import { Icon } from "./common";

/** Images up to this size are fetched and shown at once; bigger ones on demand. */
const AUTO_IMAGE_BYTES = 8 * 1024 * 1024;
const SHOWN_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp)$/u;

const images = new Map<string, Promise<string>>();

function toDataUrl(bytes: Uint8Array, mime: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("cannot read the image"));
    reader.readAsDataURL(new Blob([bytes as BlobPart], { type: mime }));
  });
}

function imageUrl(client: SecureChatClient, attachment: AttachmentRef): Promise<string> {
  let url = images.get(attachment.id);
  if (!url) {
    url = client.downloadAttachment(attachment).then((bytes) => toDataUrl(bytes, attachment.mime));
    url.catch(() => images.delete(attachment.id));
    images.set(attachment.id, url);
  }
  return url;
}

async function saveFile(client: SecureChatClient, attachment: AttachmentRef): Promise<void> {
  const bytes = await client.downloadAttachment(attachment);
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: attachment.mime }));
  const a = document.createElement("a");
  a.href = url;
  a.download = attachment.name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function AttachmentView({ client, attachment }: { client: SecureChatClient; attachment: AttachmentRef }) {
  const isImage = SHOWN_TYPES.test(attachment.mime);
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [large, setLarge] = useState(false);

  const loadImage = () => {
    setBusy(true);
    imageUrl(client, attachment)
      .then(setUrl, (e: unknown) => setError(explain(e)))
      .finally(() => setBusy(false));
  };

  useEffect(() => {
    if (isImage && attachment.size <= AUTO_IMAGE_BYTES) loadImage();
  }, [attachment.id]);

  if (isImage && url) {
    return (
      <>
        <button type="button" class="thumb-button" aria-label={`Open ${attachment.name}`} onClick={() => setLarge(true)}>
          <img class="thumb" src={url} alt={attachment.name} />
        </button>
        {large ? (
          <div class="lightbox" role="dialog" aria-modal="true" aria-label={attachment.name} onClick={() => setLarge(false)}>
            <img src={url} alt={attachment.name} />
            <div class="lightbox-bar">
              <span>{attachment.name}</span>
              <button type="button" class="secondary small" onClick={(e) => {
                e.stopPropagation();
                void saveFile(client, attachment).catch((err: unknown) => setError(explain(err)));
              }}>
                Download
              </button>
              <button type="button" class="secondary small" onClick={() => setLarge(false)}>
                Close
              </button>
            </div>
          </div>
        ) : null}
      </>
    );
  }

  return (
    <div class="file">
      <Icon name="file" />
      <span class="file-text">
        <span class="file-name">{attachment.name}</span>
        <span class="file-size">{fileSize(attachment.size)}</span>
      </span>
      <button
        type="button"
        class="secondary small"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          setError(null);
          void (isImage ? Promise.resolve(loadImage()) : saveFile(client, attachment))
            .catch((e: unknown) => setError(explain(e)))
            .finally(() => setBusy(false));
        }}
      >
        {busy ? "Decrypting…" : isImage ? "Show" : "Download"}
      </button>
      {error ? (
        <span class="error" role="alert">
          {error}
        </span>
      ) : null}
    </div>
  );
}
