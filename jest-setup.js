// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';

// React 19 (react-dom/server.browser, pulled in by @grafana/ui) needs MessageChannel, which
// jsdom does not provide. Node's MessagePort keeps jest alive once onmessage is set, so use a
// small setTimeout-based channel instead: enough for React's scheduler, leaves no open handles.
class TimeoutPort {
  constructor() {
    this.onmessage = null;
    this.other = null;
  }
  postMessage(data) {
    const target = this.other;
    setTimeout(() => target.onmessage && target.onmessage({ data }), 0);
  }
  start() {}
  close() {}
  addEventListener(type, fn) {
    if (type === 'message') {
      this.onmessage = fn;
    }
  }
  removeEventListener() {}
}

class TimeoutMessageChannel {
  constructor() {
    this.port1 = new TimeoutPort();
    this.port2 = new TimeoutPort();
    this.port1.other = this.port2;
    this.port2.other = this.port1;
  }
}

if (typeof global.MessageChannel === 'undefined') {
  Object.assign(global, { MessageChannel: TimeoutMessageChannel, MessagePort: TimeoutPort });
}

// Combobox sizes its menu with canvas text metrics; jsdom has no canvas. A fixed-width font is
// enough for layout-free tests.
HTMLCanvasElement.prototype.getContext = function getContext() {
  return { font: '', measureText: (text) => ({ width: 8 * String(text).length }) };
};

// The virtualised option list needs element sizes; jsdom reports zero.
if (typeof global.ResizeObserver === 'undefined') {
  global.ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}
if (typeof global.IntersectionObserver === 'undefined') {
  global.IntersectionObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
    takeRecords() {
      return [];
    }
  };
}
