// The accessibility audit of tests/browser/test_accessibility.py: returns a list of problems.
(() => {
  const problems = [];
  const parse = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0
      && s.visibility !== 'hidden' && s.display !== 'none';
  };
  if (!['fi', 'sv', 'en'].includes(document.documentElement.lang)) problems.push('no lang');
  if (document.querySelectorAll('h1').length !== 1) problems.push('h1 count');
  for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
    if (!visible(el)) continue;
    const name = (el.labels && el.labels.length ? el.labels[0].textContent : '')
      || el.getAttribute('aria-label') || (el.type === 'radio' || el.type === 'checkbox'
        ? el.closest('label') && el.closest('label').textContent : el.textContent);
    if (!name || !name.trim()) problems.push(`no name: ${el.outerHTML.slice(0, 80)}`);
    const r = el.getBoundingClientRect();
    const inline = el.matches('.link, .choice input, input[type=radio], input[type=checkbox]');
    if (!inline && r.height < 43.5) problems.push(`small target (${r.height}px): ${el.outerHTML.slice(0, 60)}`);
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !visible(el)) continue;
    const s = getComputedStyle(el);
    const fg = parse(s.color).slice(0, 3);
    const bg = background(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}: ${node.textContent.trim().slice(0, 40)}`);
  }
  return problems;
})
